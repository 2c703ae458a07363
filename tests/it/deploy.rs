//! The deployment files agree with the binary: the Kubernetes manifests' ports (traffic and
//! admin), probe paths and ports, scrape annotations and grace period, and the Dockerfile's port,
//! config path and health check. (Their schemas are
//! checked by kubernetes-validate and hadolint in `.ci/run`.)

use std::net::SocketAddr;

use responder::config::{
    DEFAULT_HEALTH_PATH, DEFAULT_LISTEN, DEFAULT_METRICS_PATH, DEFAULT_READY_PATH,
    DEFAULT_SHUTDOWN_TIMEOUT,
};

pub(super) fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn default_port() -> u16 {
    DEFAULT_LISTEN.parse::<SocketAddr>().unwrap().port()
}

/// The value of the first `key:` line (or `- key:` list item) after the first line containing
/// `anchor`.
pub(super) fn value_after<'a>(yaml: &'a str, anchor: &str, key: &str) -> &'a str {
    let mut lines = yaml.lines().skip_while(|l| !l.contains(anchor));
    lines
        .find_map(|l| {
            let l = l.trim();
            // A list item's first key, too.
            l.strip_prefix("- ")
                .unwrap_or(l)
                .strip_prefix(&format!("{key}:"))
        })
        .map(|v| v.trim().trim_matches('"'))
        .unwrap_or_else(|| panic!("no `{key}:` after `{anchor}`"))
}

/// The container's `args:` list.
fn args(yaml: &str) -> Vec<String> {
    yaml.lines()
        .skip_while(|l| l.trim() != "args:")
        .skip(1)
        .map_while(|l| l.trim().strip_prefix("- "))
        .map(|a| a.trim_matches('"').to_string())
        .collect()
}

fn seconds_arg(args: &[String], flag: &str) -> Option<f64> {
    let i = args.iter().position(|a| a == flag)?;
    args.get(i + 1)?.parse().ok()
}

#[test]
fn the_deployment_matches_the_server() {
    let yaml = read("deploy/kubernetes/deployment.yaml");
    // The probes and the scrape go to the admin listener the environment sets.
    let admin: SocketAddr = value_after(&yaml, "name: RESPONDER_ADMIN_LISTEN", "value")
        .parse()
        .unwrap();
    let admin_port = admin.port().to_string();
    let expected = [
        ("ports:", "containerPort", default_port().to_string()),
        ("name: admin", "containerPort", admin_port.clone()),
        ("readinessProbe:", "path", DEFAULT_READY_PATH.into()),
        ("readinessProbe:", "port", "admin".into()),
        ("livenessProbe:", "path", DEFAULT_HEALTH_PATH.into()),
        ("livenessProbe:", "port", "admin".into()),
        ("annotations:", "prometheus.io/scrape", "true".into()),
        ("annotations:", "prometheus.io/port", admin_port),
        (
            "annotations:",
            "prometheus.io/path",
            DEFAULT_METRICS_PATH.into(),
        ),
    ];
    for (anchor, key, value) in expected {
        assert_eq!(
            value_after(&yaml, anchor, key),
            value,
            "{key} after {anchor}"
        );
    }

    let args = args(&yaml);
    let delay = seconds_arg(&args, "--shutdown-delay").unwrap_or(0.0);
    let timeout =
        seconds_arg(&args, "--shutdown-timeout").unwrap_or(DEFAULT_SHUTDOWN_TIMEOUT.as_secs_f64());
    let grace: f64 = value_after(&yaml, "spec:", "terminationGracePeriodSeconds")
        .parse()
        .unwrap();
    assert!(
        grace > delay + timeout,
        "grace {grace} s must exceed delay {delay} s + timeout {timeout} s"
    );

    // The binary accepts exactly these arguments and this environment.
    let out = crate::common::binary()
        .args(&args)
        .arg("--check")
        .env("RESPONDER_ADMIN_LISTEN", admin.to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
}

#[test]
fn the_service_and_autoscaler_point_at_the_deployment() {
    let service = read("deploy/kubernetes/service.yaml");
    assert_eq!(value_after(&service, "ports:", "targetPort"), "http");
    assert!(
        !service.contains("admin"),
        "the Service exposes the traffic port only"
    );
    let hpa = read("deploy/kubernetes/hpa.yaml");
    assert_eq!(value_after(&hpa, "scaleTargetRef:", "kind"), "Deployment");
    assert_eq!(value_after(&hpa, "scaleTargetRef:", "name"), "responder");
}

#[test]
fn the_dockerfile_matches_the_server() {
    let dockerfile = read("Dockerfile");
    let line = |prefix: &str| {
        dockerfile
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} line"))
            .to_string()
    };
    assert_eq!(line("EXPOSE"), format!("EXPOSE {}", default_port()));
    assert_eq!(line("STOPSIGNAL"), "STOPSIGNAL SIGTERM");
    assert!(line("HEALTHCHECK").ends_with("CMD [\"/responder\", \"healthcheck\"]"));
    let config_path = line("ENV RESPONDER_CONFIG=")
        .trim_start_matches("ENV RESPONDER_CONFIG=")
        .to_string();
    assert!(line("COPY config/responder.toml").ends_with(&config_path));
    assert!(!line("USER").contains("root") && line("USER") != "USER 0");
    // One build for every platform: the builder cross-compiles for TARGETARCH with the script
    // that .ci/static-build runs for amd64 and arm64 (and the build context lets it in).
    assert_eq!(
        line("FROM --platform"),
        "FROM --platform=$BUILDPLATFORM rust:1.95-bookworm AS builder"
    );
    assert!(dockerfile.contains("deploy/build-static \"$TARGETARCH\" /responder"));
    assert!(read(".dockerignore").contains("!deploy/build-static"));
}

/// The `data:` entries of a ConfigMap whose values are literal blocks (`name: |`).
pub(super) fn config_map_files(yaml: &str) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = Vec::new();
    let mut in_data = false;
    for line in yaml.lines() {
        if line == "data:" {
            in_data = true;
        } else if !in_data {
            continue;
        } else if let Some(name) = line.strip_prefix("  ").and_then(|l| l.strip_suffix(": |")) {
            files.push((name.to_string(), String::new()));
        } else if let (Some(text), Some((_, body))) = (line.strip_prefix("    "), files.last_mut())
        {
            body.push_str(text);
            body.push('\n');
        }
    }
    files
}

#[test]
fn the_ingress_nginx_example_matches_the_server() {
    let values = read("deploy/ingress-nginx/values.yaml");
    assert_eq!(
        value_after(&values, "defaultBackend:", "port"),
        default_port().to_string()
    );
    assert!(value_after(&values, "controller:", "custom-http-errors")
        .split(',')
        .all(|code| (400..=599).contains(&code.trim().parse::<u16>().unwrap())));
    let env = |name: &str| value_after(&values, &format!("name: {name}"), "value").to_string();
    let dir = env("RESPONDER_ERROR_PAGES_DIR");
    assert_eq!(value_after(&values, "extraVolumeMounts:", "mountPath"), dir);
    assert_eq!(
        value_after(&values, "extraVolumes:", "name"),
        value_after(&values, "extraVolumeMounts:", "name")
    );

    // The ConfigMap's pages, in a directory as the volume mounts them: the binary takes them.
    let pages = read("deploy/ingress-nginx/error-pages.yaml");
    assert_eq!(
        value_after(&values, "configMap:", "name"),
        value_after(&pages, "metadata:", "name")
    );
    let files = config_map_files(&pages);
    assert!(files.len() >= 3, "{files:?}");
    let mounted = tempfile::tempdir().unwrap();
    for (name, body) in &files {
        std::fs::write(mounted.path().join(name), body).unwrap();
    }
    let out = crate::common::binary()
        .arg("--check")
        .env("RESPONDER_ERROR_PAGES", env("RESPONDER_ERROR_PAGES"))
        .env("RESPONDER_ERROR_PAGES_DIR", mounted.path())
        .env("RESPONDER_LOG_FORMAT", env("RESPONDER_LOG_FORMAT"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    // And they serve: a 503 asked for in JSON comes from 5xx.json, the ingress's headers in it.
    let server = crate::common::Server::start_with_env(
        &[],
        &[
            ("RESPONDER_ERROR_PAGES", "true"),
            (
                "RESPONDER_ERROR_PAGES_DIR",
                mounted.path().to_str().unwrap(),
            ),
        ],
    );
    let got = server.exchange(
        b"GET / HTTP/1.1\r\nHost: t\r\nX-Code: 503\r\nX-Format: application/json\r\n\
          X-Service-Name: cart\r\nX-Request-ID: r-1\r\nConnection: close\r\n\r\n",
    );
    let body = crate::common::body_of(&got);
    let page: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(page["code"], 503);
    assert_eq!(page["service"], "cart");
    assert_eq!(page["request_id"], "r-1");
}

#[test]
fn the_deployment_mounts_its_config_map_where_the_image_reads_and_follows_it() {
    let yaml = read("deploy/kubernetes/deployment.yaml");
    let map = read("deploy/kubernetes/configmap.yaml");
    let config_path = read("Dockerfile")
        .lines()
        .find_map(|l| l.strip_prefix("ENV RESPONDER_CONFIG="))
        .expect("the image names its configuration")
        .to_string();
    let (dir, name) = config_path.rsplit_once('/').unwrap();
    assert_eq!(value_after(&yaml, "volumeMounts:", "mountPath"), dir);
    assert_eq!(
        value_after(&yaml, "volumeMounts:", "name"),
        value_after(&yaml, "volumes:", "name")
    );
    assert_eq!(
        value_after(&yaml, "configMap:", "name"),
        value_after(&map, "metadata:", "name")
    );
    assert!(
        !yaml.lines().any(|l| l.trim_start().starts_with("subPath:")),
        "a subPath mount is never updated"
    );
    // The file as the volume holds it: valid, and followed.
    let files = config_map_files(&map);
    let (_, text) = files
        .iter()
        .find(|(file, _)| file == name)
        .unwrap_or_else(|| panic!("no {name} in the ConfigMap: {files:?}"));
    assert!(text.lines().any(|l| l.trim() == "watch = true"), "{text}");
    let (ok, out) = crate::common::check(text);
    assert!(ok, "{out}");
}
