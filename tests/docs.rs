//! The documentation's links hold (issue 34): every relative link in
//! `README.md` and `docs/*.md` points at a file that exists and, when it
//! names a heading (`page.md#heading`), at a heading that page has; and every
//! page in `docs/` is linked from the README.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The README and every page in `docs/`.
fn pages() -> Vec<PathBuf> {
    let mut out = vec![root().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("a docs/ folder")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    out.extend(docs);
    out
}

/// The lines outside fenced code blocks, with their line numbers (code shows
/// links and headings as examples, not as links).
fn prose(text: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            out.push((n + 1, line));
        }
    }
    out
}

/// A line with its inline code spans removed.
fn without_code(line: &str) -> String {
    let mut out = String::new();
    for (i, piece) in line.split('`').enumerate() {
        if i % 2 == 0 {
            out.push_str(piece);
        }
    }
    out
}

/// The targets of the line's inline links `[text](target)`.
fn links(line: &str) -> Vec<String> {
    let line = without_code(line);
    let mut out = Vec::new();
    let mut rest = line.as_str();
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        match after.find(')') {
            Some(end) => {
                out.push(after[..end].trim().to_string());
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
    out
}

/// A heading's anchor as GitHub makes it: lower case, punctuation other
/// than `-` and `_` dropped (code spans keep their text), spaces as `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a page's headings; a repeated heading gets `-1`, `-2`, …
fn anchors(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (_, line) in prose(text) {
        let trimmed = line.trim_start_matches('#');
        if trimmed.len() == line.len() || !trimmed.starts_with(' ') {
            continue;
        }
        let base = slug(trimmed);
        let mut anchor = base.clone();
        let mut n = 0;
        while out.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        out.insert(anchor);
    }
    out
}

/// What is wrong with the relative links of one page, `text` read from
/// `page`: each a line saying which link and why.
fn broken_links(page: &Path, text: &str) -> Vec<String> {
    let dir = page.parent().unwrap();
    let mut out = Vec::new();
    for (n, line) in prose(text) {
        for target in links(line) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (file, anchor) = match target.split_once('#') {
                Some((f, a)) => (f, Some(a)),
                None => (target.as_str(), None),
            };
            let path = if file.is_empty() {
                page.to_path_buf()
            } else {
                dir.join(file)
            };
            let said = format!("{}:{n}: ({target})", page.display());
            if !path.exists() {
                out.push(format!("{said}: no file {}", path.display()));
                continue;
            }
            if let Some(anchor) = anchor {
                let body = if file.is_empty() {
                    text.to_string()
                } else {
                    std::fs::read_to_string(&path).unwrap_or_default()
                };
                if !anchors(&body).contains(anchor) {
                    out.push(format!("{said}: no heading #{anchor}"));
                }
            }
        }
    }
    out
}

#[test]
fn every_relative_link_in_the_readme_and_docs_points_at_a_file_and_heading_that_exist() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        checked += prose(&text)
            .iter()
            .map(|(_, l)| links(l).len())
            .sum::<usize>();
        broken.extend(broken_links(&page, &text));
    }
    assert!(
        checked > 30,
        "only {checked} links found: is the parser right?"
    );
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn every_page_in_docs_is_linked_from_the_readme() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let linked: BTreeSet<String> = prose(&readme)
        .into_iter()
        .flat_map(|(_, l)| links(l))
        .map(|t| t.split('#').next().unwrap().to_string())
        .collect();
    let pages = pages();
    assert!(pages.len() >= 10, "{pages:?}");
    for page in &pages[1..] {
        let name = format!("docs/{}", page.file_name().unwrap().to_str().unwrap());
        assert!(
            linked.contains(&name),
            "{name} is not linked from README.md"
        );
    }
}

/// The checker itself: it finds what is broken, and passes what is not.
#[test]
fn the_link_checker_reports_a_missing_file_and_a_missing_heading() {
    let page = root().join("README.md");
    let text = "# Top\n\n## `/backfill` and more\n\n### Top\n\n\
                [ok](docs/operating.md#socket-mode) [ok](#backfill-and-more) [ok](#top-1)\n\
                [web](https://example.com/x.md) `[code](nowhere.md)`\n\
                ```\n[fenced](nowhere.md)\n```\n\
                [gone](docs/nowhere.md) [no heading](docs/operating.md#no-such-heading) [self](#missing)\n";
    let broken = broken_links(&page, text);
    assert_eq!(broken.len(), 3, "{broken:#?}");
    assert!(broken[0].contains("no file") && broken[0].contains("nowhere.md"));
    assert!(broken[1].contains("no heading #no-such-heading"));
    assert!(broken[2].contains("no heading #missing"));
}
