//! The module graph points one way: every `crate::` and `super::` path in a module's code (grouped
//! imports such as `use crate::{a, b::{c, d}}` included) names a module of a lower layer, as the
//! layer table in ARCHITECTURE.md draws them. A table row names a module by its path
//! (`serve::worker`); a file belongs to the row of the longest path that contains it, so a folder's
//! row covers the files inside it that have none of their own. Every row covers a file.

use std::collections::BTreeMap;
use std::path::Path;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The table rows `| N | `a`, `b::c` |` of ARCHITECTURE.md's "Layers" section: module path to
/// layer.
fn layers() -> BTreeMap<String, u32> {
    let doc = std::fs::read_to_string(format!("{ROOT}/ARCHITECTURE.md")).unwrap();
    let section = doc
        .split("\n## ")
        .find(|s| s.starts_with("Layers"))
        .expect("ARCHITECTURE.md has a Layers section");
    let mut layers = BTreeMap::new();
    for row in section.lines().filter(|l| l.starts_with("| ")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let Ok(layer) = cells[1].parse::<u32>() else {
            continue;
        };
        for module in cells[2].split(',') {
            let module = module.trim().trim_matches('`');
            assert!(
                layers.insert(module.to_string(), layer).is_none(),
                "{module} is in two layers"
            );
        }
    }
    layers
}

/// The row a module path belongs to: the longest table path that is it or contains it.
fn row<'a>(layers: &'a BTreeMap<String, u32>, module: &str) -> Option<(&'a str, u32)> {
    layers
        .iter()
        .filter(|(path, _)| module == path.as_str() || module.starts_with(&format!("{path}::")))
        .max_by_key(|(path, _)| path.len())
        .map(|(path, layer)| (path.as_str(), *layer))
}

/// The module path of a source file below `src/`: `serve/worker.rs` is `serve::worker`,
/// `serve/mod.rs` is `serve`.
fn module_of(relative: &Path) -> String {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts.join("::")
}

/// Reads one path tree at the start of `code` (`a::b`, `a::{b, c::{d}}`, `{a, b}`), appending
/// every leaf path to `out` behind `prefix`; returns the bytes read.
fn path_tree(code: &[u8], prefix: &[String], out: &mut Vec<Vec<String>>) -> usize {
    let mut at = 0;
    let mut path = prefix.to_vec();
    loop {
        while code.get(at).is_some_and(|c| c.is_ascii_whitespace()) {
            at += 1;
        }
        if code.get(at) == Some(&b'{') {
            at += 1;
            loop {
                at += path_tree(&code[at..], &path, out);
                while code.get(at).is_some_and(|c| c.is_ascii_whitespace()) {
                    at += 1;
                }
                match code.get(at) {
                    Some(b',') => at += 1,
                    Some(b'}') => return at + 1,
                    _ => return at,
                }
            }
        }
        let start = at;
        while code
            .get(at)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
        {
            at += 1;
        }
        if at > start {
            path.push(String::from_utf8_lossy(&code[start..at]).into_owned());
        }
        if code[at..].starts_with(b"::") {
            at += 2;
            continue;
        }
        if path.len() > prefix.len() {
            out.push(path);
        }
        return at;
    }
}

/// The module paths a source file's code (its tests left out) names through `crate::` and
/// `super::`, resolved from the file's own module path, each as written (items included: a row
/// covers them).
fn imports(source: &str, module: &str) -> Vec<String> {
    let code = source.split("#[cfg(test)]").next().unwrap_or_default();
    let own: Vec<String> = module.split("::").map(str::to_string).collect();
    let mut found = Vec::new();
    let bytes = code.as_bytes();
    for (at, _) in code.match_indices("crate::") {
        path_tree(&bytes[at + "crate::".len()..], &[], &mut found);
    }
    for (at, _) in code.match_indices("super::") {
        if bytes[..at].ends_with(b"::") {
            continue;
        }
        let parent = &own[..own.len().saturating_sub(1)];
        path_tree(&bytes[at + "super::".len()..], parent, &mut found);
    }
    let mut paths: Vec<String> = found.into_iter().map(|p| p.join("::")).collect();
    paths.sort();
    paths.dedup();
    paths
}

/// What is wrong with one file's imports against the table: an empty list when they all point
/// down.
fn violations(layers: &BTreeMap<String, u32>, module: &str, source: &str) -> Vec<String> {
    let Some((own_row, own)) = row(layers, module) else {
        return vec![format!(
            "module {module} is in no row of ARCHITECTURE.md's layer table"
        )];
    };
    let mut wrong = Vec::new();
    for import in imports(source, module) {
        let Some((their_row, theirs)) = row(layers, &import) else {
            wrong.push(format!("{module} imports {import}, which is in no row"));
            continue;
        };
        if their_row != own_row && theirs >= own {
            wrong.push(format!(
                "{module} (layer {own}) imports {import} (layer {theirs}): imports must point down"
            ));
        }
    }
    wrong
}

fn source_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            source_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_import_points_down_the_layers_of_architecture_md() {
    let layers = layers();
    let src = Path::new(ROOT).join("src");
    let mut files = Vec::new();
    source_files(&src, &mut files);
    let mut rows_used = Vec::new();
    let mut wrong = Vec::new();
    for path in files {
        let module = module_of(path.strip_prefix(&src).unwrap());
        if module == "lib" || module == "main" {
            continue;
        }
        let source = std::fs::read_to_string(&path).unwrap();
        wrong.extend(violations(&layers, &module, &source));
        if let Some((own_row, _)) = row(&layers, &module) {
            rows_used.push(own_row.to_string());
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    rows_used.sort();
    rows_used.dedup();
    let listed: Vec<String> = layers.keys().cloned().collect();
    assert_eq!(
        rows_used, listed,
        "every row of the layer table covers a file"
    );
}

#[test]
fn the_guard_catches_an_upward_import_inside_a_group_and_through_super() {
    let layers: BTreeMap<String, u32> = [("low", 0), ("mid", 1), ("mid::leaf", 0), ("high", 2)]
        .into_iter()
        .map(|(m, l)| (m.to_string(), l))
        .collect();
    let grouped = "use crate::{low, high::{Thing, other}};\n";
    let found = violations(&layers, "mid", grouped);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].contains("imports high::Thing"), "{found:?}");

    let nested = "use crate::{low::{a, b}, mid::leaf};\nfn f() { crate::low::c(); }\n";
    assert_eq!(violations(&layers, "mid", nested), Vec::<String>::new());

    let upward_sibling = "use super::{Mid, leaf};\n";
    let found = violations(&layers, "mid::leaf", upward_sibling);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("imports mid::Mid"), "{found:?}");

    let test_code_only = "fn f() {}\n#[cfg(test)]\nmod tests { use crate::high; }\n";
    assert_eq!(
        violations(&layers, "low", test_code_only),
        Vec::<String>::new()
    );
    assert_eq!(violations(&layers, "nowhere", "").len(), 1);
}
