//! Error pages by path (`/503`, `/404.json`) and the recipes in `deploy/` for the proxies that
//! replace ingress-nginx: each test reads what the recipe configures, sends responder what that
//! proxy would send, and checks what the proxy gets back.

use crate::common::{body_of, header, status_of, Server};
use crate::deploy::{config_map_files, read, value_after};

/// `GET path` with `fields` (header lines, each ending in CRLF), read to the close.
fn get(server: &Server, path: &str, fields: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: a\r\n{fields}Connection: close\r\n\r\n");
    server.exchange(request.as_bytes())
}

/// responder with the default-backend configuration of deploy/gateway-api/.
fn default_backend() -> Server {
    let yaml = read("deploy/gateway-api/responder-config.yaml");
    let files = config_map_files(&yaml);
    let (_, toml) = files
        .iter()
        .find(|(name, _)| name == "responder.toml")
        .expect("responder.toml in the ConfigMap");
    Server::with_config(toml, &[])
}

#[test]
fn error_pages_by_path_take_their_format_from_the_extension() {
    let server = Server::start(&["--error-pages"]);
    let cases = [
        ("/503", "text/html; charset=utf-8", 503),
        ("/503.html", "text/html; charset=utf-8", 503),
        ("/404.json", "application/json", 404),
        ("/500.txt", "text/plain; charset=utf-8", 500),
        ("/429.html", "text/html; charset=utf-8", 429),
    ];
    for (path, content_type, status) in cases {
        let answer = get(&server, path, "");
        assert_eq!(status_of(&answer), status, "{path}: {answer}");
        assert_eq!(
            header(&answer, "Content-Type"),
            Some(content_type),
            "{path}"
        );
    }
    let json = get(&server, "/404.json", "Accept: text/html\r\n");
    let page: serde_json::Value = serde_json::from_str(body_of(&json)).unwrap();
    assert_eq!(page["code"], 404);
    assert!(body_of(&get(&server, "/500.txt", "")).starts_with("500 Internal Server Error\n"));
    // Without an extension the format is negotiated as for X-Code.
    let negotiated = get(&server, "/502", "Accept: application/json\r\n");
    assert_eq!(
        header(&negotiated, "Content-Type"),
        Some("application/json")
    );
    // X-Code wins over the path, with its own negotiation.
    let both = get(
        &server,
        "/404.json",
        "X-Code: 503\r\nX-Format: text/plain\r\n",
    );
    assert_eq!(status_of(&both), 503);
    assert!(
        body_of(&both).starts_with("503 Service Unavailable\n"),
        "{both}"
    );
    // An unknown extension, a code out of range or not three digits: routed as usual.
    for path in [
        "/503.xml",
        "/503.",
        "/200.html",
        "/600",
        "/5030",
        "/abc.html",
        "/503/x",
    ] {
        let answer = get(&server, path, "");
        assert_eq!(status_of(&answer), 200, "{path}: {answer}");
        assert_eq!(body_of(&answer), "Hello, world!", "{path}");
    }
    // Outside error-page mode a path is only a path.
    let plain = Server::start(&[]);
    assert_eq!(status_of(&get(&plain, "/503.html", "")), 200);
}

#[test]
fn traefik_errors_middleware_gets_the_page_for_the_status() {
    let crd = read("deploy/traefik/middleware.yaml");
    let file = read("deploy/traefik/dynamic.yml");
    let query = value_after(&crd, "errors:", "query");
    assert_eq!(query, value_after(&file, "errors:", "query"));
    assert_eq!(value_after(&crd, "service:", "port"), service_port());
    let server = default_backend();
    for status in [404, 502, 503] {
        // Traefik asks with GET and the original request's headers.
        let path = query.replace("{status}", &status.to_string());
        let answer = get(
            &server,
            &path,
            "Accept: text/html,application/xhtml+xml,*/*;q=0.8\r\nX-Forwarded-For: 203.0.113.7\r\n\
             X-Forwarded-Host: shop.example\r\nX-Forwarded-Proto: https\r\n",
        );
        assert_eq!(status_of(&answer), status, "{path}: {answer}");
        assert_eq!(
            header(&answer, "Content-Type"),
            Some("text/html; charset=utf-8")
        );
        assert!(
            body_of(&answer).contains(&format!("<title>{status} ")),
            "{answer}"
        );
    }
}

/// The port of deploy/kubernetes/service.yaml's Service.
fn service_port() -> String {
    let service = read("deploy/kubernetes/service.yaml");
    value_after(&service, "ports:", "port").to_string()
}

#[test]
fn a_gateway_api_catch_all_gets_404_for_what_no_route_matches() {
    let route = read("deploy/gateway-api/httproute.yaml");
    assert_eq!(value_after(&route, "path:", "type"), "PathPrefix");
    assert_eq!(value_after(&route, "path:", "value"), "/");
    assert_eq!(value_after(&route, "backendRefs:", "name"), "responder");
    assert_eq!(value_after(&route, "backendRefs:", "port"), service_port());
    // Envoy Gateway's Gateway is the route's parent, served by Envoy Gateway's controller.
    let gateway = read("deploy/envoy-gateway/gateway.yaml");
    let class = value_after(&gateway, "kind: GatewayClass", "name");
    assert_eq!(
        value_after(&gateway, "kind: GatewayClass", "controllerName"),
        "gateway.envoyproxy.io/gatewayclass-controller"
    );
    let gw = &gateway[gateway.find("kind: Gateway\n").expect("a Gateway")..];
    assert_eq!(value_after(gw, "spec:", "gatewayClassName"), class);
    assert_eq!(
        value_after(gw, "metadata:", "name"),
        value_after(&route, "parentRefs:", "name")
    );
    let server = default_backend();
    // What Envoy (Envoy Gateway, or another Gateway API implementation) forwards for a path no
    // other route matches, any method.
    for method in ["GET", "HEAD", "POST"] {
        let request = format!(
            "{method} /no/such/page?q=1 HTTP/1.1\r\nHost: shop.example\r\n\
             X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\n\
             X-Envoy-External-Address: 203.0.113.7\r\n\
             X-Request-Id: 3f1c2b7a-4e6d-4f00-8112-233445566778\r\nContent-Length: 0\r\n\
             Connection: close\r\n\r\n"
        );
        let answer = server.exchange(request.as_bytes());
        assert_eq!(status_of(&answer), 404, "{method}: {answer}");
        assert_eq!(
            header(&answer, "X-Request-Id"),
            Some("3f1c2b7a-4e6d-4f00-8112-233445566778")
        );
        if method != "HEAD" {
            assert_eq!(
                body_of(&answer),
                "404 Not Found: no route matches this path\n"
            );
        }
    }
}

#[test]
fn haproxy_fetches_its_error_pages_by_x_code() {
    let cfg = read("deploy/haproxy/haproxy.cfg");
    let codes: Vec<&str> = cfg
        .lines()
        .filter_map(|l| l.trim().strip_prefix("http-request set-header X-Code "))
        .collect();
    assert_eq!(codes, ["404", "503"]);
    assert!(cfg.contains("default_backend responder_not_found"));
    assert!(!cfg.lines().any(|l| l.trim().starts_with("errorfile")));
    let server = default_backend();
    for code in codes {
        let fields =
            format!("X-Code: {code}\r\nX-Original-URI: /app/cart\r\nAccept: application/json\r\n");
        let answer = get(&server, "/app/cart", &fields);
        assert_eq!(status_of(&answer), code.parse::<u16>().unwrap(), "{answer}");
        let page: serde_json::Value = serde_json::from_str(body_of(&answer)).unwrap();
        assert_eq!(page["code"].to_string(), code);
    }
}
