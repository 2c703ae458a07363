//! The module graph points one way: every `crate::` path in a module's code names a module of a
//! lower layer, as the layer table in ARCHITECTURE.md draws them. Every module is in the table.

use std::collections::BTreeMap;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The table rows `| N | `a`, `b` |` of ARCHITECTURE.md's "Layers" section: module to layer.
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

/// The modules a source file's code (its tests left out) names through `crate::` (its own name
/// among them when a macro it exports names its items by path).
fn imports(source: &str) -> Vec<String> {
    let code = source.split("#[cfg(test)]").next().unwrap_or_default();
    let mut found: Vec<String> = code
        .match_indices("crate::")
        .map(|(at, m)| {
            code[at + m.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .filter(|name: &String| !name.is_empty())
        .collect();
    found.sort();
    found.dedup();
    found
}

#[test]
fn every_import_points_down_the_layers_of_architecture_md() {
    let layers = layers();
    let mut modules = Vec::new();
    for entry in std::fs::read_dir(format!("{ROOT}/src")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if name == "lib" || name == "main" {
            continue;
        }
        let source = std::fs::read_to_string(&path).unwrap();
        let Some(&own) = layers.get(&name) else {
            panic!("module {name} is not in ARCHITECTURE.md's layer table");
        };
        for import in imports(&source).into_iter().filter(|i| *i != name) {
            let Some(&theirs) = layers.get(&import) else {
                panic!("{name} imports {import}, which is not in the layer table");
            };
            assert!(
                theirs < own,
                "{name} (layer {own}) imports {import} (layer {theirs}): imports must point down"
            );
        }
        modules.push(name);
    }
    modules.sort();
    let listed: Vec<String> = layers.keys().cloned().collect();
    assert_eq!(modules, listed, "the layer table lists exactly the modules");
}
