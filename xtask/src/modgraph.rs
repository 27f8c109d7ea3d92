//! `cargo xtask modgraph`: no import circle among a crate's top-level modules.
//!
//! A newcomer reads a crate from its floor up; a module that reaches itself again through
//! the modules it imports has no floor. This reads `crates/gateway/src` and
//! `crates/sandbox/src` as text (no `syn`: a handful of rules is enough for our own code
//! and keeps xtask light), draws the graph of references between top-level modules and
//! reports every strongly connected component of more than one module.
//!
//! The rules:
//! - `foo.rs` and everything under `foo/` is the module `foo`.
//! - An edge `a → b` is `crate::b…` written anywhere in `a` (a `use`, a `use crate::{b, …}`
//!   group, or a path in code), or `super::…` that climbs from `a` to the crate root and
//!   names `b`.
//! - `crate::Name`, where `Name` is an item the root re-exports (`pub use b::Name`), is an
//!   edge to `b`: a re-export is only the crate's map.
//! - `lib.rs` / `main.rs` are roots. A root that holds nothing but `mod`, `use` and
//!   re-export lines is no node; one that defines items is the node `lib` (or `main`), and
//!   `crate::Item` naming one of its items is an edge to it. In a root, `b::…` also names
//!   the module `b`, and its `pub use` lines are not edges.
//! - Comments and string literals are ignored.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::util::{Result, root};

/// The crates whose modules must not import in a circle.
const CRATES: [&str; 2] = ["crates/gateway/src", "crates/sandbox/src"];

/// One source file: its path below `src/` (with `/`) and its text.
pub struct Source {
    pub path: String,
    pub text: String,
}

/// Top-level modules and the references between them.
#[derive(Debug, Default)]
pub struct Graph {
    pub nodes: BTreeSet<String>,
    /// `(from, to)` → the first file where `from` names `to`.
    pub edges: BTreeMap<(String, String), String>,
}

/// Checks the `src/` directories named in `args`, or the gateway's and the sandbox's.
pub fn run(args: &[String]) -> Result {
    let dirs: Vec<std::path::PathBuf> = if args.is_empty() {
        CRATES.iter().map(|d| root().join(d)).collect()
    } else {
        args.iter().map(std::path::PathBuf::from).collect()
    };
    let mut failures = Vec::new();
    for path in &dirs {
        let dir = path
            .strip_prefix(root())
            .unwrap_or(path)
            .display()
            .to_string();
        let sources = read_dir(path)?;
        let graph = graph(&sources);
        let cycles = cycles(&graph);
        if cycles.is_empty() {
            eprintln!(
                "{dir}: {} modules, {} edges, no import circle",
                graph.nodes.len(),
                graph.edges.len()
            );
            continue;
        }
        eprintln!("{dir}: {} import circle(s):", cycles.len());
        for cycle in &cycles {
            eprintln!("  circle of {}: {}", cycle.len(), cycle.join(", "));
            for ((from, to), file) in &graph.edges {
                if cycle.contains(from) && cycle.contains(to) {
                    eprintln!("    {from} → {to}  (in {file})");
                }
            }
        }
        failures.push(format!("{dir}: {} import circle(s)", cycles.len()));
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}

/// Every `.rs` file below `dir`, except `bin/` (other crates).
fn read_dir(dir: &Path) -> Result<Vec<Source>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let entries =
            std::fs::read_dir(&d).map_err(|e| format!("cannot read {}: {e}", d.display()))?;
        for entry in entries {
            let path = entry
                .map_err(|e| format!("cannot read {}: {e}", d.display()))?
                .path();
            let Ok(relative) = path.strip_prefix(dir) else {
                continue;
            };
            let relative = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            if path.is_dir() {
                if relative != "bin" {
                    todo.push(path);
                }
            } else if relative.ends_with(".rs") {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                out.push(Source {
                    path: relative,
                    text,
                });
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Where a file sits: its top-level module (`None` for a root) and how many modules deep
/// it is (`super::` climbs one of them).
fn place(path: &str) -> (Option<String>, usize) {
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["lib.rs" | "main.rs"] => (None, 0),
        [file] => (Some(file.trim_end_matches(".rs").to_owned()), 1),
        [top, .., last] => {
            let depth = if *last == "mod.rs" {
                parts.len() - 1
            } else {
                parts.len()
            };
            (Some((*top).to_owned()), depth)
        }
        [] => (None, 0),
    }
}

/// The node a root becomes when it defines items: `lib.rs` → `lib`.
fn root_name(path: &str) -> String {
    path.trim_end_matches(".rs").to_owned()
}

pub fn graph(sources: &[Source]) -> Graph {
    let modules: BTreeSet<String> = sources.iter().filter_map(|s| place(&s.path).0).collect();
    let mut g = Graph {
        nodes: modules.clone(),
        ..Graph::default()
    };
    // What the roots re-export, and whether they are nodes.
    let mut reexports: BTreeMap<String, String> = BTreeMap::new();
    let mut root_items: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut root_nodes = BTreeSet::new();
    for s in sources.iter().filter(|s| place(&s.path).0.is_none()) {
        let tokens = tokenize(&s.text);
        let shape = root_shape(&tokens);
        for (first, leaf) in shape.reexports {
            if modules.contains(&first) && leaf != "*" {
                reexports.insert(leaf, first);
            }
        }
        if !shape.items.is_empty() {
            root_nodes.insert(root_name(&s.path));
            root_items.insert(root_name(&s.path), shape.items);
        }
    }
    g.nodes.extend(root_nodes.iter().cloned());
    let resolve = |name: &str| -> Option<String> {
        if modules.contains(name) {
            Some(name.to_owned())
        } else if let Some(m) = reexports.get(name) {
            Some(m.clone())
        } else {
            root_items
                .iter()
                .find(|(_, items)| items.contains(name))
                .map(|(root, _)| root.clone())
        }
    };
    for s in sources {
        let (module, depth) = place(&s.path);
        let from = match &module {
            Some(m) => m.clone(),
            None if root_nodes.contains(&root_name(&s.path)) => root_name(&s.path),
            None => continue,
        };
        let tokens = tokenize(&s.text);
        let names = if module.is_some() {
            references(&tokens, depth)
        } else {
            root_references(&tokens, &modules)
        };
        for name in names {
            if let Some(to) = resolve(&name)
                && to != from
            {
                g.edges.entry((from.clone(), to)).or_insert(s.path.clone());
            }
        }
    }
    g
}

/// Every strongly connected component of more than one node (Tarjan), each sorted.
pub fn cycles(g: &Graph) -> Vec<Vec<String>> {
    struct Tarjan<'a> {
        next: BTreeMap<&'a str, Vec<&'a str>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, v: &'a str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.next.get(v).cloned().unwrap_or_default() {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut t = Tarjan {
        next: BTreeMap::new(),
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for (from, to) in g.edges.keys() {
        t.next.entry(from.as_str()).or_default().push(to.as_str());
    }
    for v in &g.nodes {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.found.sort();
    t.found
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    /// `::`
    Path,
    Punct(char),
}

/// Identifiers, `::` and single punctuation, with comments, strings and char literals
/// left out (a path inside a doc comment or a string is not an import).
fn tokenize(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    while i < chars.len() {
        let c = chars[i];
        if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == '"' {
            i = skip_string(&chars, i + 1, 0);
        } else if c == '\'' {
            if at(i + 1) == '\\' {
                // Past the backslash and the escaped character, which may be a quote.
                i += 3;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                // A lifetime: its name is read as an identifier, which names no module.
                i += 1;
            }
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let raw_capable = matches!(word.as_str(), "r" | "br" | "cr");
            if matches!(word.as_str(), "b" | "c" | "r" | "br" | "cr") && at(i) == '"' {
                i = skip_string(&chars, i + 1, 0);
            } else if raw_capable && at(i) == '#' {
                let mut hashes = 0;
                while at(i + hashes) == '#' {
                    hashes += 1;
                }
                if at(i + hashes) == '"' {
                    i = skip_string(&chars, i + hashes + 1, hashes);
                } else {
                    // `r#ident`: the identifier follows.
                    i += 1;
                }
            } else {
                out.push(Token::Ident(word));
            }
        } else if c == ':' && at(i + 1) == ':' {
            out.push(Token::Path);
            i += 2;
        } else {
            if !c.is_whitespace() {
                out.push(Token::Punct(c));
            }
            i += 1;
        }
    }
    out
}

/// The index after a string's closing quote (followed by `hashes` `#` for a raw string);
/// escapes only count in a normal string.
fn skip_string(chars: &[char], mut i: usize, hashes: usize) -> usize {
    while i < chars.len() {
        if hashes == 0 && chars[i] == '\\' {
            i += 2;
            continue;
        }
        if chars[i] == '"' && (1..=hashes).all(|k| chars.get(i + k) == Some(&'#')) {
            return i + 1 + hashes;
        }
        i += 1;
    }
    i
}

fn ident(tokens: &[Token], i: usize) -> Option<&str> {
    match tokens.get(i) {
        Some(Token::Ident(s)) => Some(s),
        _ => None,
    }
}

/// The names a path starting at the crate root reaches first: `b` in `b::c`, `a` and `b`
/// in `{a, b::c}`.
fn first_names(tokens: &[Token], i: usize) -> Vec<String> {
    match tokens.get(i) {
        Some(Token::Ident(s)) => vec![s.clone()],
        Some(Token::Punct('{')) => {
            let mut names = Vec::new();
            let mut depth = 0;
            let mut expect_name = true;
            for t in &tokens[i..] {
                match t {
                    Token::Punct('{') => {
                        depth += 1;
                        expect_name = depth == 1;
                        continue;
                    }
                    Token::Punct('}') => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    Token::Punct(',') if depth == 1 => {
                        expect_name = true;
                        continue;
                    }
                    Token::Ident(s) if depth == 1 && expect_name && s != "self" => {
                        names.push(s.clone());
                    }
                    _ => {}
                }
                expect_name = false;
            }
            names
        }
        _ => Vec::new(),
    }
}

/// The names a module file reaches at the crate root, through `crate::` and through
/// `super::` chains that climb out of the file's `depth` (plus the inline `mod x { … }`
/// blocks around them).
fn references(tokens: &[Token], depth: usize) -> Vec<String> {
    let mut names = Vec::new();
    let mut braces = 0usize;
    // The brace depth each enclosing inline `mod x {` opened at.
    let mut inline_mods: Vec<usize> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            Token::Punct('{') => braces += 1,
            Token::Punct('}') => {
                braces = braces.saturating_sub(1);
                if inline_mods.last() == Some(&braces) {
                    inline_mods.pop();
                }
            }
            Token::Ident(kw)
                if kw == "mod"
                    && ident(tokens, i + 1).is_some()
                    && tokens.get(i + 2) == Some(&Token::Punct('{')) =>
            {
                inline_mods.push(braces);
            }
            Token::Ident(kw) if kw == "crate" && tokens.get(i + 1) == Some(&Token::Path) => {
                // `pub(crate)` and `$crate` are not paths; `crate::` is.
                names.extend(first_names(tokens, i + 2));
            }
            Token::Ident(kw)
                if kw == "super"
                    && tokens.get(i + 1) == Some(&Token::Path)
                    && (i == 0 || tokens[i - 1] != Token::Path) =>
            {
                let mut climbs = 0;
                let mut j = i;
                while ident(tokens, j) == Some("super") && tokens.get(j + 1) == Some(&Token::Path) {
                    climbs += 1;
                    j += 2;
                }
                if climbs >= depth + inline_mods.len() {
                    names.extend(first_names(tokens, j));
                }
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    names
}

/// What a root file holds at its top level.
#[derive(Debug, Default)]
struct RootShape {
    /// `(module, name)` for each `pub use module::…::name` (`*` for a glob).
    reexports: Vec<(String, String)>,
    /// The items it defines itself (`*` when one has no simple name, like an `impl`).
    items: BTreeSet<String>,
    /// Token ranges of its private `use` lines and its items: the parts that are edges.
    edges_from: Vec<(usize, usize)>,
}

/// Reads a root's top level statement by statement.
fn root_shape(tokens: &[Token]) -> RootShape {
    let mut shape = RootShape::default();
    let mut i = 0;
    while i < tokens.len() {
        // Attributes: `#[…]` and `#![…]`.
        if tokens[i] == Token::Punct('#') {
            let mut j = i + 1;
            if tokens.get(j) == Some(&Token::Punct('!')) {
                j += 1;
            }
            i = skip_group(tokens, j, '[', ']');
            continue;
        }
        let start = i;
        let mut public = false;
        if ident(tokens, i) == Some("pub") {
            public = true;
            i += 1;
            if tokens.get(i) == Some(&Token::Punct('(')) {
                i = skip_group(tokens, i, '(', ')');
            }
        }
        let end = statement_end(tokens, i);
        match (ident(tokens, i), ident(tokens, i + 1)) {
            (Some("mod"), Some(_)) if tokens.get(i + 2) == Some(&Token::Punct(';')) => {}
            (Some("extern"), Some("crate")) => {}
            (Some("use"), _) if public => {
                shape
                    .reexports
                    .extend(use_leaves(&tokens[i + 1..end], None));
            }
            (Some("use"), _) => shape.edges_from.push((i, end)),
            _ => {
                let name = item_name(&tokens[i..end]).unwrap_or_else(|| "*".to_owned());
                shape.items.insert(name);
                shape.edges_from.push((start, end));
            }
        }
        i = end;
    }
    shape
}

/// The names a root file reaches: like [`references`], plus bare `b::` for its modules,
/// in its private `use` lines and its items only.
fn root_references(tokens: &[Token], modules: &BTreeSet<String>) -> Vec<String> {
    let shape = root_shape(tokens);
    let mut names = Vec::new();
    for (start, end) in shape.edges_from {
        let part = &tokens[start..end];
        names.extend(references(part, 0));
        for (k, t) in part.iter().enumerate() {
            if let Token::Ident(s) = t
                && modules.contains(s)
                && part.get(k + 1) == Some(&Token::Path)
                && (k == 0 || part[k - 1] != Token::Path)
            {
                names.push(s.clone());
            }
        }
    }
    names
}

/// The index after the group opened at `i` (which must be `open`), or `i + 1`.
fn skip_group(tokens: &[Token], i: usize, open: char, close: char) -> usize {
    if tokens.get(i) != Some(&Token::Punct(open)) {
        return i + 1;
    }
    let mut depth = 0;
    let mut j = i;
    while j < tokens.len() {
        if tokens[j] == Token::Punct(open) {
            depth += 1;
        } else if tokens[j] == Token::Punct(close) {
            depth -= 1;
            if depth == 0 {
                return j + 1;
            }
        }
        j += 1;
    }
    j
}

/// The index after a top-level statement that starts at `i`: after its `;` at depth 0, or
/// after the `}` that closes its body (and a `;` right after it).
fn statement_end(tokens: &[Token], i: usize) -> usize {
    let mut depth = 0usize;
    let mut j = i;
    let is_use = ident(tokens, i) == Some("use");
    while j < tokens.len() {
        match tokens[j] {
            Token::Punct('{' | '(' | '[') => depth += 1,
            Token::Punct('}' | ')' | ']') => {
                depth = depth.saturating_sub(1);
                if depth == 0 && tokens[j] == Token::Punct('}') && !is_use {
                    let next = j + 1;
                    return if tokens.get(next) == Some(&Token::Punct(';')) {
                        next + 1
                    } else {
                        next
                    };
                }
            }
            Token::Punct(';') if depth == 0 => return j + 1,
            _ => {}
        }
        j += 1;
    }
    j
}

/// The name an item defines: `struct Name`, `fn name`, `const NAME`, `macro_rules! name`.
fn item_name(tokens: &[Token]) -> Option<String> {
    const KINDS: [&str; 9] = [
        "fn", "struct", "enum", "trait", "type", "const", "static", "union", "mod",
    ];
    for (k, t) in tokens.iter().enumerate() {
        if let Token::Ident(s) = t {
            if KINDS.contains(&s.as_str()) {
                return ident(tokens, k + 1).map(str::to_owned);
            }
            if s == "macro_rules" {
                return ident(tokens, k + 2).map(str::to_owned);
            }
            if s == "impl" {
                return None;
            }
        }
    }
    None
}

/// `(first segment, leaf)` for each name a use tree brings in; `prefix` is the first
/// segment when inside a group.
fn use_leaves(tokens: &[Token], prefix: Option<&str>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut first = prefix.map(str::to_owned);
    let mut last: Option<String> = None;
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            Token::Ident(s) if s == "as" => {
                if let (Some(f), Some(alias)) = (&first, ident(tokens, i + 1)) {
                    out.push((f.clone(), alias.to_owned()));
                }
                last = None;
                i += 2;
                continue;
            }
            Token::Ident(s) => {
                let skip = first.is_none() && (s == "crate" || s == "self");
                if first.is_none() && !skip {
                    first = Some(s.clone());
                }
                last = Some(s.clone());
            }
            Token::Punct('*') => {
                if let Some(f) = &first {
                    out.push((f.clone(), "*".to_owned()));
                }
                last = None;
            }
            Token::Punct('{') => {
                let end = skip_group(tokens, i, '{', '}');
                let inner = &tokens[i + 1..end.saturating_sub(1)];
                for part in split_top(inner) {
                    out.extend(use_leaves(part, first.as_deref()));
                }
                last = None;
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    if let (Some(f), Some(l)) = (first, last) {
        out.push((f, l));
    }
    out
}

/// A group's parts, split at its own commas (a nested group is split when it is read).
fn split_top(tokens: &[Token]) -> Vec<&[Token]> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (k, t) in tokens.iter().enumerate() {
        match t {
            Token::Punct('{') => depth += 1,
            Token::Punct('}') => depth = depth.saturating_sub(1),
            Token::Punct(',') if depth == 0 => {
                parts.push(&tokens[start..k]);
                start = k + 1;
            }
            _ => {}
        }
    }
    parts.push(&tokens[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph_of(files: &[(&str, &str)]) -> Graph {
        graph(
            &files
                .iter()
                .map(|(path, text)| Source {
                    path: (*path).to_owned(),
                    text: (*text).to_owned(),
                })
                .collect::<Vec<_>>(),
        )
    }

    fn edges(g: &Graph) -> Vec<(&str, &str)> {
        g.edges
            .keys()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect()
    }

    #[test]
    fn two_modules_that_import_each_other_are_a_cycle() {
        let g = graph_of(&[
            ("lib.rs", "pub mod a;\npub mod b;\npub mod c;\n"),
            ("a.rs", "use crate::b::Thing;\npub struct A;"),
            ("b.rs", "pub struct Thing;\nfn f() { let _ = crate::a::A; }"),
            ("c.rs", "use crate::a::A;"),
        ]);
        assert_eq!(edges(&g), [("a", "b"), ("b", "a"), ("c", "a")]);
        assert_eq!(cycles(&g), [vec!["a".to_owned(), "b".to_owned()]]);
        assert!(!g.nodes.contains("lib"), "a lib.rs of mod lines is no node");
    }

    #[test]
    fn arrows_that_all_point_down_are_no_cycle() {
        let g = graph_of(&[
            ("lib.rs", "pub mod a;\npub mod b;\npub use b::Thing;"),
            (
                "a.rs",
                "use crate::Thing; // crate::a in a comment\nconst S: &str = \"crate::a\";",
            ),
            ("b/mod.rs", "pub struct Thing;\nmod inner;"),
            ("b/inner.rs", "use super::Thing;"),
        ]);
        assert_eq!(edges(&g), [("a", "b")], "the re-export leads to b");
        assert!(cycles(&g).is_empty());
    }

    #[test]
    fn grouped_imports_name_each_module() {
        let g = graph_of(&[
            ("lib.rs", "mod a; mod b; mod c; mod d;"),
            (
                "a.rs",
                "use crate::{\n    b::{self, X},\n    c::Y as Z,\n};\nuse crate::{d};",
            ),
            ("b.rs", ""),
            ("c.rs", ""),
            ("d.rs", "pub(crate) fn f() {}"),
        ]);
        assert_eq!(edges(&g), [("a", "b"), ("a", "c"), ("a", "d")]);
    }

    #[test]
    fn super_counts_only_when_it_climbs_to_the_root() {
        let g = graph_of(&[
            ("lib.rs", "mod a; mod b;"),
            ("a/mod.rs", "mod deep;\nfn here() {}"),
            // a::deep: `super::` is `a` itself, `super::super::` the root.
            ("a/deep.rs", "use super::here;\nuse super::super::b::B;"),
            (
                "b.rs",
                "pub struct B;\n#[cfg(test)]\nmod tests {\n    use super::B;\n}\nfn f() { super::a::here(); }",
            ),
        ]);
        assert_eq!(edges(&g), [("a", "b"), ("b", "a")]);
        assert_eq!(cycles(&g).len(), 1);
    }

    #[test]
    fn a_lib_that_defines_items_is_a_node() {
        let g = graph_of(&[
            (
                "lib.rs",
                "pub mod a;\npub mod b;\npub use a::Helper;\nuse b::Parts;\npub struct Gateway { p: Parts }",
            ),
            ("a.rs", "pub struct Helper;\nfn f(_: &crate::Gateway) {}"),
            ("b.rs", "pub struct Parts;\nuse crate::Helper;"),
        ]);
        assert!(g.nodes.contains("lib"));
        assert_eq!(edges(&g), [("a", "lib"), ("b", "a"), ("lib", "b")]);
        assert_eq!(
            cycles(&g),
            [vec!["a".to_owned(), "b".to_owned(), "lib".to_owned()]]
        );
    }

    #[test]
    fn nested_reexport_groups_lead_to_their_module() {
        let leaves = use_leaves(&tokenize("a::{b::{C, D as E}, F};"), None);
        assert_eq!(
            leaves,
            [
                ("a".to_owned(), "C".to_owned()),
                ("a".to_owned(), "E".to_owned()),
                ("a".to_owned(), "F".to_owned()),
            ]
        );
    }

    #[test]
    fn strings_and_lifetimes_do_not_confuse_the_reader() {
        let tokens = tokenize(
            "fn f<'a>(x: &'a str) -> char { let _ = r#\"crate::x\"#; let _ = b\"crate::y\"; '\\'' }",
        );
        assert!(
            !tokens.contains(&Token::Ident("crate".into())),
            "{tokens:?}"
        );
        assert!(tokens.contains(&Token::Ident("str".into())));
    }
}
