//! What each dependency costs in the widget's WebAssembly: every function body of the
//! module cargo built (before wasm-bindgen and wasm-opt, which drop the names) is
//! attributed, by its demangled name in the `name` section, to the crate it comes from;
//! generic code goes to the crate that wrote it (serde's visitor for a widget type is
//! serde's cost of decoding it), drop glue to the crate of the type dropped. The
//! `__wbindgen_describe*` functions are left out: wasm-bindgen removes them.

use std::collections::BTreeMap;
use std::path::Path;

use wasmparser::{KnownCustom, Name, Parser, Payload, TypeRef};

use crate::util::Result;

/// Crates reported together, as a reader of the size report thinks of them.
const GROUPS: &[(&str, &[&str])] = &[
    ("the widget (klarna_widget)", &["klarna_widget"]),
    ("klarna_types", &["klarna_types"]),
    (
        "leptos (reactive_graph, tachys, …)",
        &[
            "leptos",
            "leptos_dom",
            "leptos_macro",
            "reactive_graph",
            "reactive_stores",
            "tachys",
            "any_spawner",
            "or_poisoned",
            "throw_error",
            "oco_ref",
            "send_wrapper",
            "guardian",
            "hydration_context",
            "server_fn",
            "slotmap",
            "indexmap",
            "hashbrown",
            "rustc_hash",
            "futures",
            "futures_util",
            "futures_channel",
            "futures_core",
            "futures_executor",
            "pin_project_lite",
            "async_lock",
            "event_listener",
            "concurrent_queue",
            "either_of",
            "next_tuple",
            "paste",
            "tracing",
            "const_str_slice_concat",
            "web_sys_leptos",
            "server_fn",
            "leptos_server",
            "wasm_streams",
        ],
    ),
    ("serde", &["serde", "serde_core"]),
    ("serde-wasm-bindgen", &["serde_wasm_bindgen"]),
    (
        "gloo-net (gloo_utils, http)",
        &["gloo_net", "gloo_utils", "http"],
    ),
    (
        "wasm-bindgen, js-sys, web-sys",
        &["wasm_bindgen", "wasm_bindgen_futures", "js_sys", "web_sys"],
    ),
    ("thiserror", &["thiserror"]),
    (
        "Rust's core/alloc/std (formatting, collections, allocator)",
        &[
            "core",
            "alloc",
            "std",
            "dlmalloc",
            "compiler_builtins",
            "memchr",
        ],
    ),
];

/// The crate a demangled function name belongs to.
fn crate_of(name: &str) -> String {
    let mut s = name.trim_start();
    // wasm-bindgen's generated shims and imports.
    if s.starts_with("__wbg") || s.starts_with("__wbindgen") || s.starts_with("__externref") {
        return "wasm_bindgen".into();
    }
    // Drop glue belongs to what it drops.
    for wrapper in ["core::ptr::drop_in_place<", "core::ptr::drop_in_place::<"] {
        if let Some(inner) = s.strip_prefix(wrapper) {
            s = inner;
        }
    }
    // `<T as Trait>::f`, `<&mut T as …>`, `<[T] as …>`: the implementing type's crate.
    loop {
        let before = s;
        s = s.trim_start_matches(['<', '&', '(', '[', '*', ' ']);
        for prefix in ["mut ", "const ", "dyn ", "impl "] {
            s = s.strip_prefix(prefix).unwrap_or(s);
        }
        if s == before {
            break;
        }
    }
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    if end > 0 && s[end..].starts_with("::") {
        return s[..end].into();
    }
    // A primitive's or a generic parameter's impl (`<u32 as core::fmt::Display>`,
    // `<[T] as alloc::…>`): the trait's crate wrote it.
    match s.find(" as ") {
        Some(at) => crate_of(&s[at + 4..]),
        // Not a Rust path (a C symbol, a bare export name).
        None => "(other)".into(),
    }
}

fn group_of(krate: &str) -> &'static str {
    GROUPS
        .iter()
        .find(|(_, crates)| crates.contains(&krate))
        .map_or("everything else", |(group, _)| group)
}

/// Bytes per group (function bodies), plus the data segments and the rest of the module.
pub struct Attribution {
    pub groups: Vec<(&'static str, usize)>,
    /// Per crate, for the ones in "everything else".
    pub others: Vec<(String, usize)>,
    pub data: usize,
    pub total: usize,
}

fn span(range: std::ops::Range<u64>) -> usize {
    usize::try_from(range.end - range.start).unwrap_or(usize::MAX)
}

pub fn attribute(wasm: &Path) -> Result<Attribution> {
    let bytes = std::fs::read(wasm).map_err(|e| format!("{}: {e}", wasm.display()))?;
    let err = |e: wasmparser::BinaryReaderError| format!("{}: {e}", wasm.display());
    let mut imported_functions = 0u32;
    let mut bodies: Vec<usize> = Vec::new();
    let mut names: BTreeMap<u32, String> = BTreeMap::new();
    let mut data = 0usize;
    for payload in Parser::new(0).parse_all(&bytes) {
        match payload.map_err(err)? {
            Payload::ImportSection(imports) => {
                for import in imports.into_imports() {
                    if matches!(import.map_err(err)?.ty, TypeRef::Func(_)) {
                        imported_functions += 1;
                    }
                }
            }
            Payload::CodeSectionEntry(body) => bodies.push(span(body.range())),
            Payload::DataSection(section) => data += span(section.range()),
            Payload::CustomSection(section) => {
                if let KnownCustom::Name(reader) = section.as_known() {
                    for name in reader {
                        if let Name::Function(map) = name.map_err(err)? {
                            for naming in map {
                                let naming = naming.map_err(err)?;
                                names.insert(
                                    naming.index,
                                    format!("{:#}", rustc_demangle::demangle(naming.name)),
                                );
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    if names.is_empty() {
        return Err(format!(
            "{}: no function names (built with strip?)",
            wasm.display()
        ));
    }
    let mut per_group: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut others: BTreeMap<String, usize> = BTreeMap::new();
    for (i, size) in bodies.iter().enumerate() {
        let index = imported_functions + u32::try_from(i).unwrap_or(u32::MAX);
        let name = names.get(&index).map_or("", String::as_str);
        // wasm-bindgen reads these to write the JS glue, then removes them.
        if name.starts_with("__wbindgen_describe") {
            continue;
        }
        let krate = if name.is_empty() {
            "(unnamed)".into()
        } else {
            crate_of(name)
        };
        let group = group_of(&krate);
        *per_group.entry(group).or_default() += size;
        if group == "everything else" {
            *others.entry(krate).or_default() += size;
        }
    }
    let mut groups: Vec<_> = per_group.into_iter().collect();
    groups.sort_by_key(|g| std::cmp::Reverse(g.1));
    let mut others: Vec<_> = others.into_iter().collect();
    others.sort_by_key(|o| std::cmp::Reverse(o.1));
    Ok(Attribution {
        groups,
        others,
        data,
        total: bytes.len(),
    })
}

/// Prints the attribution of the module cargo built for the bundle.
pub fn report(wasm: &Path) -> Result {
    let a = attribute(wasm)?;
    let code: usize = a.groups.iter().map(|(_, n)| n).sum();
    println!(
        "\nwhat each dependency costs in the wasm (function bodies before wasm-opt, of {:.1} KB code + {:.1} KB data in {:.1} KB; {}):",
        code as f64 / 1024.0,
        a.data as f64 / 1024.0,
        a.total as f64 / 1024.0,
        wasm.display()
    );
    for (group, bytes) in &a.groups {
        println!(
            "  {group:<60} {:>7.1} KB  {:>4.1} %",
            *bytes as f64 / 1024.0,
            100.0 * *bytes as f64 / code.max(1) as f64
        );
    }
    if !a.others.is_empty() {
        let list: Vec<String> = a
            .others
            .iter()
            .take(8)
            .map(|(k, n)| format!("{k} {:.1} KB", *n as f64 / 1024.0))
            .collect();
        println!("    everything else: {}", list.join(", "));
    }
    println!(
        "  data segments (strings: the shoppers' texts, panic locations, type names) {:>7.1} KB",
        a.data as f64 / 1024.0
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::crate_of;

    #[test]
    fn names_are_attributed_to_the_crate_that_wrote_the_code() {
        for (name, krate) in [
            ("klarna_widget::api::post", "klarna_widget"),
            (
                "<serde_wasm_bindgen::de::Deserializer as serde::de::Deserializer>::deserialize_struct",
                "serde_wasm_bindgen",
            ),
            (
                "<&mut serde_json::de::Deserializer<R> as serde::de::Deserializer>::deserialize_any",
                "serde_json",
            ),
            (
                "core::ptr::drop_in_place<leptos::callback::Callback<()>>",
                "leptos",
            ),
            ("<u32 as core::fmt::Display>::fmt", "core"),
            (
                "<[T] as alloc::slice::SpecCloneIntoVec<T,A>>::clone_into",
                "alloc",
            ),
            ("<str as serde::ser::Serialize>::serialize", "serde"),
            ("__wbg_get_abc123", "wasm_bindgen"),
            ("memcpy", "(other)"),
        ] {
            assert_eq!(crate_of(name), krate, "{name}");
        }
    }
}
