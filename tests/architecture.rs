//! The layering, checked: every top-level module of `src/` stands on a floor
//! (the table in the crate-root `//!` layout doc, `src/lib.rs`), and a module
//! may use only modules on its own floor or below. Among the modules there is
//! no import cycle at all, floor or no floor. Test code (`#[cfg(test)] mod
//! tests { ... }` blocks and `tests.rs` files) is left aside, and so are comments: a doc link upwards is not an import.
//!
//! What counts as a use: a path `crate::<module>` anywhere in the code, and
//! each name of a `crate::{a, b::c}` group. The HTTP framework (`axum`) is
//! the edge's: no module below the `edge` floor may use it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A floor: its number and the modules on it.
#[derive(Debug)]
struct Floor {
    number: u32,
    name: String,
    modules: Vec<String>,
}

/// The floors from the layout doc's table: rows `//! | 3 | flows | `flows` |`.
fn floors(lib_rs: &str) -> Vec<Floor> {
    let mut out = Vec::new();
    for line in lib_rs.lines() {
        let Some(row) = line.strip_prefix("//!") else {
            continue;
        };
        let cells: Vec<&str> = row.trim().split('|').map(str::trim).collect();
        // "| 0 | ground | `domain`, `clock` | ... |" splits into
        // ["", "0", "ground", "`domain`, `clock`", ..., ""].
        if cells.len() < 4 || !cells[0].is_empty() {
            continue;
        }
        let Ok(number) = cells[1].parse::<u32>() else {
            continue;
        };
        let modules = cells[3]
            .split(',')
            .map(|m| {
                m.trim()
                    .trim_matches('`')
                    .trim_matches(|c| c == '[' || c == ']')
            })
            .map(|m| m.trim_matches('`').to_string())
            .filter(|m| !m.is_empty())
            .collect();
        out.push(Floor {
            number,
            name: cells[2].to_string(),
            modules,
        });
    }
    out
}

/// The top-level modules `lib.rs` declares (`pub mod x;` or `mod x;`).
fn declared(lib_rs: &str) -> BTreeSet<String> {
    lib_rs
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l.strip_prefix("pub ").unwrap_or(l);
            l.strip_prefix("mod ")?
                .strip_suffix(';')
                .map(|m| m.trim().to_string())
        })
        .collect()
}

/// The code of a file without its comments and its test modules
/// (`#[cfg(test)] mod tests { ... }`, wherever they stand).
fn code_of(source: &str) -> String {
    let mut out = String::new();
    let mut in_block = false;
    let mut lines = source.lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        if in_block {
            if t.contains("*/") {
                in_block = false;
            }
            continue;
        }
        if t.starts_with("/*") {
            in_block = !t.contains("*/");
            continue;
        }
        if t.starts_with("//") {
            continue;
        }
        if t.starts_with("#[cfg(test)]")
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod tests"))
        {
            let header = lines.next().unwrap_or_default();
            if header.trim_end().ends_with(';') {
                continue; // `mod tests;`: a file of its own, skipped as `tests.rs`
            }
            skip_block(header, &mut lines);
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Skips the lines of a block that opens on `first`, up to its closing brace.
/// Braces in string and character literals do not count.
fn skip_block<'a>(first: &'a str, lines: &mut impl Iterator<Item = &'a str>) {
    let mut depth = 0i64;
    let mut in_str = false;
    let mut opened = false;
    let mut line = Some(first);
    while let Some(l) = line {
        let t = l.trim_start();
        if !in_str && t.starts_with("//") {
            line = lines.next();
            continue;
        }
        let b = l.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            if in_str {
                match c {
                    b'\\' => i += 1,
                    b'"' => in_str = false,
                    _ => {}
                }
            } else {
                match c {
                    b'"' => in_str = true,
                    b'\'' if i + 2 < b.len() && b[i + 2] == b'\'' => i += 2,
                    b'{' => {
                        depth += 1;
                        opened = true;
                    }
                    b'}' => depth -= 1,
                    b'/' if i + 1 < b.len() && b[i + 1] == b'/' => break,
                    _ => {}
                }
            }
            i += 1;
        }
        if opened && depth <= 0 {
            return;
        }
        line = lines.next();
    }
}

/// The top-level modules a piece of code uses.
fn uses(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        // `servo_sla_bot::crate::` cannot occur; `$crate::` (macros) is the crate too.
        let after = &rest[i + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name = ident(item.trim());
                if !name.is_empty() && name != "self" {
                    found.insert(name);
                }
            }
        } else {
            let name = ident(after);
            if !name.is_empty() {
                found.insert(name);
            }
        }
        rest = after;
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Each top-level module of `src` and the top-level modules its code uses,
/// besides itself.
fn graph(src: &Path, modules: &BTreeSet<String>) -> BTreeMap<String, BTreeSet<String>> {
    let mut g = BTreeMap::new();
    for m in modules {
        let mut files = Vec::new();
        let file = src.join(format!("{m}.rs"));
        if file.exists() {
            files.push(file);
        }
        let dir = src.join(m);
        if dir.is_dir() {
            rust_files(&dir, &mut files);
        }
        assert!(
            !files.is_empty(),
            "lib.rs declares `{m}`, but src/ has no {m}.rs or {m}/"
        );
        let mut used = BTreeSet::new();
        for f in files {
            if f.file_name().is_some_and(|n| n == "tests.rs") {
                continue;
            }
            let source = std::fs::read_to_string(&f).expect("a source file");
            used.extend(
                uses(&code_of(&source))
                    .into_iter()
                    .filter(|u| u != m && modules.contains(u)),
            );
        }
        g.insert(m.clone(), used);
    }
    g
}

/// What breaks the layering: each use of a module on a higher floor, each
/// module on no floor or on two, and each cycle.
fn problems(floors: &[Floor], g: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut out = Vec::new();
    let mut floor_of: BTreeMap<&str, &Floor> = BTreeMap::new();
    for f in floors {
        for m in &f.modules {
            if let Some(other) = floor_of.insert(m, f) {
                out.push(format!(
                    "`{m}` stands on two floors: {} and {}",
                    other.number, f.number
                ));
            }
        }
    }
    for m in floor_of.keys() {
        if !g.contains_key(*m) {
            out.push(format!(
                "the layout table names `{m}`, which lib.rs does not declare"
            ));
        }
    }
    for (m, used) in g {
        let Some(mine) = floor_of.get(m.as_str()) else {
            out.push(format!(
                "`{m}` is on no floor: add it to the layout table in src/lib.rs"
            ));
            continue;
        };
        for u in used {
            if let Some(theirs) = floor_of.get(u.as_str()) {
                if theirs.number > mine.number {
                    out.push(format!(
                        "`{m}` (floor {} {}) uses `{u}` (floor {} {}), a higher floor",
                        mine.number, mine.name, theirs.number, theirs.name
                    ));
                }
            }
        }
    }
    out.extend(
        cycles(g)
            .into_iter()
            .map(|c| format!("import cycle: {}", c.join(" -> "))),
    );
    out
}

/// The strongly connected components of more than one module (Tarjan), each
/// as a path around it.
fn cycles(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct T<'a> {
        g: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        t.index.insert(v, t.next);
        t.low.insert(v, t.next);
        t.next += 1;
        t.stack.push(v);
        t.on.insert(v);
        for w in t.g.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !t.g.contains_key(w) {
                continue;
            }
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if t.on.contains(w) {
                let iw = t.index[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                comp.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                comp.push(comp[0].clone());
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in g.keys() {
        if !t.index.contains_key(v.as_str()) {
            visit(&mut t, v);
        }
    }
    t.out
}

/// The modules below the edge that use the HTTP framework.
fn http_below_the_edge(src: &Path, floors: &[Floor]) -> Vec<String> {
    let edge = floors
        .iter()
        .find(|f| f.name == "edge")
        .map(|f| f.number)
        .expect("the layout table has an `edge` floor");
    let mut out = Vec::new();
    for f in floors.iter().filter(|f| f.number < edge) {
        for m in &f.modules {
            let mut files = Vec::new();
            let file = src.join(format!("{m}.rs"));
            if file.exists() {
                files.push(file);
            }
            if src.join(m).is_dir() {
                rust_files(&src.join(m), &mut files);
            }
            for path in files {
                let code = code_of(&std::fs::read_to_string(&path).expect("a source file"));
                if code.contains("axum::") || code.contains("use axum") {
                    out.push(format!(
                        "`{m}` (floor {} {}) uses axum in {}: HTTP is the edge's",
                        f.number,
                        f.name,
                        path.display()
                    ));
                }
            }
        }
    }
    out
}

#[test]
fn nothing_below_the_edge_speaks_http() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = std::fs::read_to_string(root.join("src/lib.rs")).expect("src/lib.rs");
    let found = http_below_the_edge(&root.join("src"), &floors(&lib));
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn every_module_uses_only_its_floor_and_below_and_nothing_imports_in_a_circle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = std::fs::read_to_string(root.join("src/lib.rs")).expect("src/lib.rs");
    let floors = floors(&lib);
    assert!(
        floors.len() >= 3,
        "the layout table in src/lib.rs's `//!` doc was not found (rows like `//! | 0 | ground | `domain` | ... |`)"
    );
    let modules = declared(&lib);
    let g = graph(&root.join("src"), &modules);
    let problems = problems(&floors, &g);
    assert!(
        problems.is_empty(),
        "the layering is broken:\n- {}",
        problems.join("\n- ")
    );
}

/// The checker itself can fail: a ground-floor module that reaches up, a
/// circle on one floor, a module on no floor.
#[test]
fn the_checker_finds_an_upward_use_a_cycle_and_a_module_on_no_floor() {
    let lib = "//! | floor | name | modules | may use |\n\
               //! |---|---|---|---|\n\
               //! | 0 | ground | `a`, `b`, `c` | itself |\n\
               //! | 1 | flows | `d` | 0, 1 |\n";
    let floors = floors(lib);
    assert_eq!(floors.len(), 2);
    assert_eq!(floors[0].modules, ["a", "b", "c"]);
    let code = |s: &str| uses(&code_of(s));
    let mut g = BTreeMap::new();
    g.insert("a".to_string(), code("use crate::d::Flow;\n"));
    g.insert("b".to_string(), code("fn f() { crate::c::g() }\n"));
    g.insert(
        "c".to_string(),
        code("use crate::{b::X, a};\n// crate::d in a comment is not a use\n"),
    );
    g.insert(
        "d".to_string(),
        // The test module, braces in literals and all, is left aside; what
        // follows it counts.
        code(concat!(
            "#[cfg(test)]\nmod tests {\n    use crate::e;\n",
            "    const B: char = '}';\n    const S: &str = \"}}\";\n}\n",
            "use crate::a;\n",
        )),
    );
    g.insert("e".to_string(), BTreeSet::new());
    assert_eq!(g["c"], ["a", "b"].map(String::from).into());
    assert_eq!(g["d"], ["a"].map(String::from).into());
    let found = problems(&floors, &g);
    assert!(
        found
            .iter()
            .any(|p| p.contains("`a` (floor 0 ground) uses `d` (floor 1 flows)")),
        "{found:?}"
    );
    assert!(
        found.iter().any(|p| p == "import cycle: a -> d -> a"),
        "{found:?}"
    );
    assert!(
        found.iter().any(|p| p == "import cycle: b -> c -> b"),
        "{found:?}"
    );
    assert!(
        found.iter().any(|p| p.contains("`e` is on no floor")),
        "{found:?}"
    );
    assert_eq!(found.len(), 4, "{found:?}");
    // The same modules, put right, pass.
    g.insert("a".to_string(), BTreeSet::new());
    g.insert("c".to_string(), code("use crate::a;\n"));
    g.remove("e");
    assert!(
        problems(&floors, &g).is_empty(),
        "{:?}",
        problems(&floors, &g)
    );
}

/// The files loose in `src/` besides the crate's roots: every module lives
/// in the folder of its floor.
const LOOSE_ALLOWED: [&str; 3] = ["main.rs", "lib.rs", "app.rs"];

/// What stands loose in `src/`: files other than [`LOOSE_ALLOWED`], and
/// top-level folders that are not a declared module.
fn loose(src: &Path, modules: &BTreeSet<String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(src)
        .expect("src/")
        .map(|e| e.expect("an entry").path())
        .collect();
    entries.sort();
    for p in entries {
        let name = p
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        if p.is_dir() {
            if !modules.contains(&name) {
                out.push(format!("src/{name}/ is a folder lib.rs does not declare"));
            }
        } else if name.ends_with(".rs") && !LOOSE_ALLOWED.contains(&name.as_str()) {
            out.push(format!(
                "src/{name} stands loose: move it into the folder of its floor"
            ));
        }
    }
    out
}

#[test]
fn every_module_lives_in_the_folder_of_its_floor() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = std::fs::read_to_string(root.join("src/lib.rs")).expect("src/lib.rs");
    let found = loose(&root.join("src"), &declared(&lib));
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// A file's module path inside the crate: `src/flows/alerts.rs` is
/// `flows::alerts`, `src/flows/review/mod.rs` is `flows::review`.
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("a file under src/");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|c| c.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|l| l == "mod") {
        parts.pop();
    }
    parts
}

/// The `pub use` lines of a piece of code, joined across lines.
fn pub_uses(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in code.lines() {
        let t = line.trim();
        if let Some(c) = current.as_mut() {
            c.push(' ');
            c.push_str(t);
        } else if t.starts_with("pub use ") || t.starts_with("pub(crate) use ") {
            current = Some(t.to_string());
        }
        if current.as_ref().is_some_and(|c| c.ends_with(';')) {
            out.extend(current.take());
        }
    }
    out
}

/// Items with a second path: a `pub use` of another top-level module's
/// items (`pub use crate::domain::…` in `slack`), or of a public child's
/// items (`pub mod risk;` and `pub use risk::RiskBand;` name it twice).
fn second_paths(file: &str, code: &str, own_module: &str) -> Vec<String> {
    let public_children: BTreeSet<String> = code
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("pub mod ")?
                .strip_suffix(';')
                .map(str::to_string)
        })
        .collect();
    let mut out = Vec::new();
    for u in pub_uses(code) {
        let path = u
            .trim_start_matches("pub(crate) use ")
            .trim_start_matches("pub use ")
            .trim();
        let first = |p: &str| -> String {
            p.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        };
        if let Some(rest) = path.strip_prefix("crate::") {
            let m = first(rest);
            if m != own_module {
                out.push(format!("{file}: `{u}` re-exports `{m}`'s items"));
            }
        } else {
            let child = first(path.trim_start_matches("self::"));
            if public_children.contains(&child) {
                out.push(format!(
                    "{file}: `{u}` gives a second path to items of the public module `{child}`"
                ));
            }
        }
    }
    out
}

#[test]
fn each_item_has_one_path() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = root.join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut found = Vec::new();
    for f in files {
        let path = module_path(&src, &f);
        let own = path.first().cloned().unwrap_or_default();
        let code = code_of(&std::fs::read_to_string(&f).expect("a source file"));
        found.extend(second_paths(
            &f.strip_prefix(root).unwrap_or(&f).display().to_string(),
            &code,
            &own,
        ));
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// The files of each top-level module (leaving aside each folder's
/// `mod.rs`, its face, and `tests.rs`) and the files of the same module
/// their code uses: `crate::m::a::b::X` uses the file of the longest known
/// module path (`m/a/b.rs`, else `m/a.rs`), `super::x` and `self::x` resolve
/// from the file's own place.
fn file_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut by_path: BTreeMap<Vec<String>, String> = BTreeMap::new();
    let mut codes = Vec::new();
    for f in &files {
        let name = f
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let path = module_path(src, f);
        if path.len() < 2 || name == "tests.rs" {
            continue; // the crate roots and top-level faces are not nodes
        }
        let label = f.strip_prefix(src).unwrap_or(f).display().to_string();
        if name != "mod.rs" {
            by_path.insert(path.clone(), label.clone());
        }
        codes.push((
            path,
            label,
            name == "mod.rs",
            code_of(&std::fs::read_to_string(f).expect("a source file")),
        ));
    }
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, label, is_face, code) in &codes {
        if *is_face {
            continue;
        }
        let mut used = BTreeSet::new();
        // Absolute paths within the same top-level module.
        let own = &path[0];
        let mut rest = code.as_str();
        let ident = |s: &str| -> String {
            s.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        };
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + "crate::".len()..];
            let mut segs = Vec::new();
            let mut s = after;
            loop {
                let id = ident(s);
                if id.is_empty() {
                    break;
                }
                s = &s[id.len()..];
                segs.push(id);
                match s.strip_prefix("::") {
                    Some(r) => s = r,
                    None => break,
                }
            }
            if segs.first() == Some(own) {
                for n in (2..=segs.len()).rev() {
                    if let Some(target) = by_path.get(&segs[..n]) {
                        used.insert(target.clone());
                        break;
                    }
                }
            }
            rest = after;
        }
        // `super::x` from `m/a/b.rs` is `m::a::x`; groups `super::{x, y}` too.
        let parent = &path[..path.len() - 1];
        let mut rest = code.as_str();
        while let Some(i) = rest.find("super::") {
            let after = &rest[i + "super::".len()..];
            let names: Vec<String> = if let Some(group) = after.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                group[..end].split(',').map(|x| ident(x.trim())).collect()
            } else {
                vec![ident(after)]
            };
            for n in names {
                let mut p = parent.to_vec();
                p.push(n);
                if let Some(target) = by_path.get(&p) {
                    used.insert(target.clone());
                }
            }
            rest = after;
        }
        used.remove(label);
        g.insert(label.clone(), used);
    }
    g
}

#[test]
fn no_files_of_one_module_use_each_other_in_a_circle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let g = file_graph(&root.join("src"));
    let found = cycles(&g);
    assert!(
        found.is_empty(),
        "files that use each other in a circle (move what both need into a file both use):\n- {}",
        found
            .iter()
            .map(|c| c.join(" -> "))
            .collect::<Vec<_>>()
            .join("\n- ")
    );
}

/// The checkers themselves can fail: a loose file, a re-export of another
/// module's item and of a public child's, and a circle of two files.
#[test]
fn the_checkers_find_a_loose_file_a_second_path_and_a_file_circle() {
    let dir = std::env::temp_dir().join(format!("arch-check-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("flows")).expect("a temp dir");
    std::fs::create_dir_all(src.join("stray")).expect("a temp dir");
    for (f, code) in [
        ("lib.rs", "pub mod flows;\n"),
        ("main.rs", ""),
        ("clock.rs", "pub struct Clock;\n"),
        ("flows/mod.rs", "pub mod a;\npub mod b;\npub mod c;\n"),
        ("flows/a.rs", "use crate::flows::b::B;\npub struct A;\n"),
        ("flows/b.rs", "use super::a::A;\npub struct B;\n"),
        ("flows/c.rs", "use super::a::A;\n"),
    ] {
        std::fs::write(src.join(f), code).expect("a temp file");
    }
    let modules: BTreeSet<String> = ["flows".to_string()].into();
    let found = loose(&src, &modules);
    assert_eq!(
        found,
        [
            "src/clock.rs stands loose: move it into the folder of its floor",
            "src/stray/ is a folder lib.rs does not declare",
        ],
        "{found:?}"
    );
    let g = file_graph(&src);
    assert_eq!(
        cycles(&g),
        [["flows/a.rs", "flows/b.rs", "flows/a.rs"]
            .map(String::from)
            .to_vec()]
    );
    let _ = std::fs::remove_dir_all(&dir);

    let across = second_paths(
        "src/slack/render.rs",
        "pub use crate::domain::text::escape_slack;\npub use crate::slack::api::Api;\n",
        "slack",
    );
    assert_eq!(across.len(), 1, "{across:?}");
    assert!(
        across[0].contains("re-exports `domain`'s items"),
        "{across:?}"
    );
    let child = second_paths(
        "src/domain/mod.rs",
        "pub mod risk;\nmod rows;\npub use risk::{\n    RiskBand,\n};\npub use rows::*;\n",
        "domain",
    );
    assert_eq!(child.len(), 1, "{child:?}");
    assert!(child[0].contains("public module `risk`"), "{child:?}");
}
