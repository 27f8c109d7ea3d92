//! `cargo xtask modgraph`: no import circle among a crate's top-level modules.
//!
//! A newcomer reads a crate from its floor up; a module that reaches itself again through
//! the modules it imports has no floor. This parses `crates/gateway/src` and
//! `crates/sandbox/src` with `syn`, draws the graph of references between top-level
//! modules and reports every strongly connected component of more than one module
//! (`petgraph`'s Tarjan).
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
//! - Paths inside macro calls count too (`matches!(x, crate::b::K)`); comments and string
//!   literals are not paths.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use petgraph::algo::tarjan_scc;
use petgraph::graphmap::DiGraphMap;
use proc_macro2::{TokenStream, TokenTree};
use syn::visit::{self, Visit};

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
        let graph = graph(&sources)?;
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

/// Every path a file writes — in `use` trees, in code and inside macro calls — as its
/// segments, each with how many inline modules deep it stands.
#[derive(Default)]
struct Paths {
    depth: usize,
    found: Vec<(usize, Vec<String>)>,
}

impl<'ast> Visit<'ast> for Paths {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        self.depth += 1;
        visit::visit_item_mod(self, m);
        self.depth -= 1;
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        for (path, _) in use_leaves(&u.tree) {
            self.found.push((self.depth, path));
        }
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        let segments = p.segments.iter().map(|s| s.ident.to_string()).collect();
        self.found.push((self.depth, segments));
        visit::visit_path(self, p);
    }

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        let mut tokens = Vec::new();
        flatten(m.tokens.clone(), &mut tokens);
        // `a :: b :: c` in the call's tokens (a `::` is two joint `:` puncts).
        let mut i = 0;
        while i < tokens.len() {
            let TokenTree::Ident(first) = &tokens[i] else {
                i += 1;
                continue;
            };
            let mut path = vec![first.to_string()];
            let mut j = i + 1;
            while let (
                Some(TokenTree::Punct(a)),
                Some(TokenTree::Punct(b)),
                Some(TokenTree::Ident(next)),
            ) = (tokens.get(j), tokens.get(j + 1), tokens.get(j + 2))
            {
                if a.as_char() != ':' || b.as_char() != ':' {
                    break;
                }
                path.push(next.to_string());
                j += 3;
            }
            if path.len() > 1 {
                self.found.push((self.depth, path));
            }
            i = j;
        }
    }
}

fn flatten(stream: TokenStream, out: &mut Vec<TokenTree>) {
    for tree in stream {
        match tree {
            TokenTree::Group(g) => flatten(g.stream(), out),
            other => out.push(other),
        }
    }
}

/// A `use` tree's leaves: each full path, and the name it brings in (`*` for a glob).
fn use_leaves(tree: &syn::UseTree) -> Vec<(Vec<String>, String)> {
    match tree {
        syn::UseTree::Path(p) => use_leaves(&p.tree)
            .into_iter()
            .map(|(mut path, name)| {
                path.insert(0, p.ident.to_string());
                (path, name)
            })
            .collect(),
        syn::UseTree::Name(n) => vec![(vec![n.ident.to_string()], n.ident.to_string())],
        syn::UseTree::Rename(r) => vec![(vec![r.ident.to_string()], r.rename.to_string())],
        syn::UseTree::Glob(_) => vec![(vec!["*".to_owned()], "*".to_owned())],
        syn::UseTree::Group(g) => g.items.iter().flat_map(use_leaves).collect(),
    }
}

/// The top-level name a path reaches from `depth` modules deep (files and inline modules),
/// if it leaves through the crate root: `crate::b…`, or as many `super::` as it is deep,
/// or — in a root — `b::…` itself.
fn root_name_of(path: &[String], depth: usize, is_root: bool) -> Option<String> {
    let first = path.first()?.as_str();
    let name = match first {
        "crate" => path.get(1),
        "super" => {
            let climbs = path.iter().take_while(|s| *s == "super").count();
            if climbs == depth {
                path.get(climbs)
            } else {
                None
            }
        }
        "self" if is_root && depth == 0 => path.get(1),
        // `b::…`, not a lone `b` (a local of that name).
        _ if is_root && depth == 0 && path.len() > 1 => path.first(),
        _ => None,
    }?;
    (name != "self" && name != "*").then(|| name.clone())
}

pub fn graph(sources: &[Source]) -> Result<Graph> {
    let parsed: Vec<(&Source, syn::File)> = sources
        .iter()
        .map(|s| {
            syn::parse_file(&s.text)
                .map(|f| (s, f))
                .map_err(|e| format!("cannot parse {}: {e}", s.path))
        })
        .collect::<Result<_>>()?;
    let modules: BTreeSet<String> = sources.iter().filter_map(|s| place(&s.path).0).collect();
    let mut g = Graph {
        nodes: modules.clone(),
        ..Graph::default()
    };
    // What the roots re-export (`pub use b::Name`), and the items they define.
    let mut reexports: BTreeMap<String, String> = BTreeMap::new();
    let mut root_items: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (s, file) in parsed.iter().filter(|(s, _)| place(&s.path).0.is_none()) {
        let mut items = BTreeSet::new();
        for item in &file.items {
            match item {
                syn::Item::Use(u) if matches!(u.vis, syn::Visibility::Public(_)) => {
                    for (path, name) in use_leaves(&u.tree) {
                        if let Some(module) = path.first().filter(|m| modules.contains(*m))
                            && name != "*"
                        {
                            reexports.insert(name, module.clone());
                        }
                    }
                }
                syn::Item::Use(_) | syn::Item::Mod(_) | syn::Item::Macro(_) => {}
                other => items.extend(item_name(other)),
            }
        }
        if !items.is_empty() {
            root_items.insert(root_name(&s.path), items);
        }
    }
    g.nodes.extend(root_items.keys().cloned());
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
    for (s, file) in &parsed {
        let (module, depth) = place(&s.path);
        let from = match &module {
            Some(m) => m.clone(),
            None if root_items.contains_key(&root_name(&s.path)) => root_name(&s.path),
            None => continue,
        };
        let mut paths = Paths::default();
        for item in &file.items {
            // A root's re-exports are its map, not edges; its `mod` lines neither.
            let map = match item {
                syn::Item::Use(u) => matches!(u.vis, syn::Visibility::Public(_)),
                syn::Item::Mod(m) => m.content.is_none(),
                _ => false,
            };
            if module.is_some() || !map {
                paths.visit_item(item);
            }
        }
        for (inline, path) in paths.found {
            let Some(name) = root_name_of(&path, depth + inline, module.is_none()) else {
                continue;
            };
            // In a root only modules count by their bare name.
            if module.is_none() && path[0] != "crate" && !modules.contains(&name) {
                continue;
            }
            if let Some(to) = resolve(&name)
                && to != from
            {
                g.edges.entry((from.clone(), to)).or_insert(s.path.clone());
            }
        }
    }
    Ok(g)
}

/// The name an item defines, if it has one.
fn item_name(item: &syn::Item) -> Option<String> {
    let ident = match item {
        syn::Item::Const(i) => &i.ident,
        syn::Item::Enum(i) => &i.ident,
        syn::Item::Fn(i) => &i.sig.ident,
        syn::Item::Static(i) => &i.ident,
        syn::Item::Struct(i) => &i.ident,
        syn::Item::Trait(i) => &i.ident,
        syn::Item::Type(i) => &i.ident,
        syn::Item::Union(i) => &i.ident,
        _ => return None,
    };
    Some(ident.to_string())
}

/// Every strongly connected component of more than one node, each sorted.
pub fn cycles(g: &Graph) -> Vec<Vec<String>> {
    let mut graph = DiGraphMap::<&str, ()>::new();
    for v in &g.nodes {
        graph.add_node(v.as_str());
    }
    for (from, to) in g.edges.keys() {
        graph.add_edge(from.as_str(), to.as_str(), ());
    }
    let mut found: Vec<Vec<String>> = tarjan_scc(&graph)
        .into_iter()
        .filter(|c| c.len() > 1)
        .map(|c| {
            let mut c: Vec<String> = c.into_iter().map(str::to_owned).collect();
            c.sort();
            c
        })
        .collect();
    found.sort();
    found
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
        .expect("parses")
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
        let tree: syn::UseTree = syn::parse_str("a::{b::{C, D as E}, F}").expect("a use tree");
        let leaves: Vec<(String, String)> = use_leaves(&tree)
            .into_iter()
            .map(|(path, name)| (path[0].clone(), name))
            .collect();
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
        let g = graph_of(&[
            ("lib.rs", "mod a; mod x; mod y;"),
            (
                "a.rs",
                "fn f<'a>(x: &'a str) -> char { let _ = r#\"crate::x\"#; let _ = b\"crate::y\"; '\\'' }",
            ),
            ("x.rs", ""),
            ("y.rs", ""),
        ]);
        assert!(edges(&g).is_empty(), "{:?}", edges(&g));
    }

    #[test]
    fn paths_inside_macro_calls_are_references() {
        let g = graph_of(&[
            ("lib.rs", "mod a; mod b;"),
            ("a.rs", "fn f(x: u8) -> bool { matches!(x, crate::b::K) }"),
            ("b.rs", "pub const K: u8 = 1;"),
        ]);
        assert_eq!(edges(&g), [("a", "b")]);
    }
}
