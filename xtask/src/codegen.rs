//! `cargo xtask codegen [--check]`: the files generated from `wit/sandbox.wit`.
//!
//! `wit/sandbox.wit` is the one definition of the guest/host interface. From
//! it come:
//! - `eryx-linker/wit/sandbox.wit` and `eryx-host/wit/sandbox.wit`: byte
//!   copies, so that each library crate packages on its own (the linker
//!   embeds it to generate the guest bindings; the host's `bindgen!` reads it);
//! - `eryx-runtime/src/world.rs`: the guest's typed view of the world: a Rust
//!   type per record and variant (fields and cases by name), their
//!   conversion to the value stack, an `Exports` trait with one method per
//!   export, the dispatcher, a start-up check of the bindings' metadata, and
//!   the guest paths of `eryx_linker::layout`.
//!
//! A change to the WIT is made in `wit/` and followed by `cargo xtask
//! codegen`; whatever the runtime, the prelude reader or the host do not
//! handle then fails to compile. `--check` (run by the xtask tests, so by
//! `cargo xtask test`) fails when a generated file is stale.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};
use wit_parser::{
    Docs, Function, Resolve, Type, TypeDefKind, TypeId, TypeOwner, WorldItem, WorldKey,
};

/// The WIT's source of truth, relative to the workspace root.
const WIT: &str = "wit/sandbox.wit";
/// Its packaged copies.
const WIT_COPIES: &[&str] = &["eryx-linker/wit/sandbox.wit", "eryx-host/wit/sandbox.wit"];
/// The guest's generated view of the world.
const GUEST_WORLD: &str = "eryx-runtime/src/world.rs";

/// Every generated file and its expected contents.
pub(crate) fn generated(root: &Path) -> Result<Vec<(String, String)>> {
    let wit =
        std::fs::read_to_string(root.join(WIT)).with_context(|| format!("cannot read {WIT}"))?;
    let mut out: Vec<(String, String)> = WIT_COPIES
        .iter()
        .map(|p| (p.to_string(), wit.clone()))
        .collect();
    out.push((GUEST_WORLD.to_string(), guest_world(&wit)?));
    Ok(out)
}

/// Writes the generated files, or with `check` only compares them.
pub(crate) fn codegen(root: &Path, check: bool) -> Result<()> {
    let mut stale = Vec::new();
    for (path, text) in generated(root)? {
        let file = root.join(&path);
        if std::fs::read_to_string(&file).ok().as_deref() == Some(text.as_str()) {
            continue;
        }
        if check {
            stale.push(path);
        } else {
            std::fs::write(&file, text).with_context(|| format!("cannot write {path}"))?;
            crate::progress!("codegen: wrote {path}");
        }
    }
    if !stale.is_empty() {
        bail!(
            "generated from {WIT} but out of date: {}; run `cargo xtask codegen`",
            stale.join(", ")
        );
    }
    Ok(())
}

fn camel(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut c = part.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn snake(name: &str) -> String {
    name.replace('-', "_")
}

fn doc(out: &mut String, docs: &Docs, indent: &str, fallback: &str) {
    match &docs.contents {
        Some(text) => {
            for line in text.trim().lines() {
                let _ = writeln!(out, "{indent}/// {}", line.trim_end());
            }
        }
        None => {
            let _ = writeln!(out, "{indent}/// {fallback}");
        }
    }
}

struct Gen<'a> {
    resolve: &'a Resolve,
    /// The generated items so far.
    out: String,
    /// Records that export parameters use (they get a `from_value`).
    param_records: Vec<TypeId>,
}

impl Gen<'_> {
    /// The Rust type of a WIT type.
    fn ty(&self, ty: &Type) -> Result<String> {
        Ok(match ty {
            Type::Bool => "bool".into(),
            Type::U8 => "u8".into(),
            Type::U32 => "u32".into(),
            Type::S32 => "i32".into(),
            Type::U64 => "u64".into(),
            Type::S64 => "i64".into(),
            Type::F64 => "f64".into(),
            Type::Char => "char".into(),
            Type::String => "String".into(),
            Type::Id(id) => {
                let def = &self.resolve.types[*id];
                match &def.kind {
                    TypeDefKind::Record(_) | TypeDefKind::Variant(_) => camel(
                        def.name
                            .as_deref()
                            .context("an anonymous record or variant")?,
                    ),
                    TypeDefKind::Option(t) => format!("Option<{}>", self.ty(t)?),
                    TypeDefKind::List(t) => format!("Vec<{}>", self.ty(t)?),
                    TypeDefKind::Result(r) => format!(
                        "Result<{}, {}>",
                        self.opt_ty(r.ok.as_ref())?,
                        self.opt_ty(r.err.as_ref())?
                    ),
                    TypeDefKind::Type(t) => self.ty(t)?,
                    other => bail!(
                        "{WIT} uses a {} type, which `cargo xtask codegen` does not map yet; extend xtask/src/codegen.rs",
                        other.as_str()
                    ),
                }
            }
            other => bail!(
                "{WIT} uses {other:?}, which `cargo xtask codegen` does not map yet; extend xtask/src/codegen.rs"
            ),
        })
    }

    fn opt_ty(&self, ty: Option<&Type>) -> Result<String> {
        ty.map_or(Ok("()".into()), |t| self.ty(t))
    }

    /// An expression turning the Rust value `x` of WIT type `ty` into a `Value`.
    fn to_value(&self, ty: &Type, x: &str) -> Result<String> {
        Ok(match ty {
            Type::Bool => format!("Value::Bool({x})"),
            Type::U8 => format!("Value::U8({x})"),
            Type::U32 => format!("Value::U32({x})"),
            Type::S32 => format!("Value::S32({x})"),
            Type::U64 => format!("Value::U64({x})"),
            Type::S64 => format!("Value::S64({x})"),
            Type::F64 => format!("Value::F64({x})"),
            Type::Char => format!("Value::Char({x})"),
            Type::String => format!("Value::String({x})"),
            Type::Id(id) => match &self.resolve.types[*id].kind {
                TypeDefKind::Record(_) | TypeDefKind::Variant(_) => format!("{x}.into_value()"),
                TypeDefKind::Option(t) => {
                    format!("Value::option({x}.map(|v| {}))", self.to_value(t, "v")?)
                }
                TypeDefKind::List(Type::U8) => format!("Value::Bytes({x})"),
                TypeDefKind::List(t) => format!(
                    "Value::List({x}.into_iter().map(|v| {}).collect())",
                    self.to_value(t, "v")?
                ),
                TypeDefKind::Result(r) => {
                    let ok = match &r.ok {
                        Some(t) => format!("Some({})", self.to_value(t, "v")?),
                        None => "None".into(),
                    };
                    let err = match &r.err {
                        Some(t) => format!("Some({})", self.to_value(t, "e")?),
                        None => "None".into(),
                    };
                    let (okp, errp) = (
                        if r.ok.is_some() { "v" } else { "()" },
                        if r.err.is_some() { "e" } else { "()" },
                    );
                    format!(
                        "match {x} {{ Ok({okp}) => Value::ok({ok}), Err({errp}) => Value::err({err}) }}"
                    )
                }
                TypeDefKind::Type(t) => self.to_value(t, x)?,
                other => bail!("no value conversion for a {} type", other.as_str()),
            },
            other => bail!("no value conversion for {other:?}"),
        })
    }

    /// An expression turning `expr` (an `Option<Value>` popped for a
    /// parameter) into the Rust value of WIT type `ty`; anything else aborts
    /// naming the export and the parameter (`func` and `param` are Rust
    /// expressions of type `&str`). Records met on the
    /// way are queued for a `from_value` of their own.
    fn decode(&mut self, ty: &Type, expr: &str, func: &str, param: &str) -> Result<String> {
        let bad =
            format!("other => eryx_ffi::world::bad_argument({func}, {param}, other.as_ref()),");
        let prim = |ctor: &str| format!("match {expr} {{ Some(Value::{ctor}(v)) => v, {bad} }}");
        Ok(match ty {
            Type::Bool => prim("Bool"),
            Type::U8 => prim("U8"),
            Type::U32 => prim("U32"),
            Type::S32 => prim("S32"),
            Type::U64 => prim("U64"),
            Type::S64 => prim("S64"),
            Type::F64 => prim("F64"),
            Type::Char => prim("Char"),
            Type::String => prim("String"),
            Type::Id(id) => match &self.resolve.types[*id].kind {
                TypeDefKind::List(Type::U8) => prim("Bytes"),
                TypeDefKind::List(t) => {
                    let item = self.decode(t, "Some(v)", func, param)?;
                    format!(
                        "match {expr} {{ Some(Value::List(items)) => items.into_iter().map(|v| {item}).collect(), {bad} }}"
                    )
                }
                TypeDefKind::Option(t) => {
                    let inner = self.decode(t, "Some(*v)", func, param)?;
                    format!(
                        "match {expr} {{ Some(Value::Variant(0, None)) => None, Some(Value::Variant(1, Some(v))) => Some({inner}), {bad} }}"
                    )
                }
                TypeDefKind::Record(_) => {
                    if !self.param_records.contains(id) {
                        self.param_records.push(*id);
                    }
                    let name = camel(self.resolve.types[*id].name.as_deref().unwrap_or(""));
                    format!("{name}::from_value({expr}, {func}, {param})")
                }
                TypeDefKind::Result(r) => {
                    let ok = match &r.ok {
                        Some(t) => self.decode(t, "Some(*v)", func, param)?,
                        None => "()".into(),
                    };
                    let err = match &r.err {
                        Some(t) => self.decode(t, "Some(*e)", func, param)?,
                        None => "()".into(),
                    };
                    let okp = if r.ok.is_some() { "Some(v)" } else { "None" };
                    let errp = if r.err.is_some() { "Some(e)" } else { "None" };
                    format!(
                        "match {expr} {{ Some(Value::Variant(0, {okp})) => Ok({ok}), Some(Value::Variant(1, {errp})) => Err({err}), {bad} }}"
                    )
                }
                TypeDefKind::Type(t) => self.decode(t, expr, func, param)?,
                other => bail!(
                    "export parameters of a {} type are not mapped by `cargo xtask codegen` yet",
                    other.as_str()
                ),
            },
            other => bail!("export parameters of type {other:?} are not mapped yet"),
        })
    }

    /// A function's Rust parameters (`name: Type`) and return (` -> Type`,
    /// or empty).
    fn signature(&self, f: &Function) -> Result<(Vec<String>, String)> {
        let params = f
            .params
            .iter()
            .map(|p| Ok(format!("{}: {}", snake(&p.name), self.ty(&p.ty)?)))
            .collect::<Result<_>>()?;
        let ret = match &f.result {
            Some(t) => format!(" -> {}", self.ty(t)?),
            None => String::new(),
        };
        Ok((params, ret))
    }

    /// A typed function per world-level import: converts the arguments,
    /// calls the import through the bindings and decodes its result.
    fn imports(&mut self, funcs: &[&Function]) -> Result<()> {
        let mut out = String::new();
        for f in funcs {
            doc(&mut out, &f.docs, "", &format!("The import `{}`.", f.name));
            let (params, ret) = self.signature(f)?;
            let args: Vec<String> = f
                .params
                .iter()
                .map(|p| self.to_value(&p.ty, &snake(&p.name)))
                .collect::<Result<_>>()?;
            let _ = writeln!(
                out,
                "pub fn {}({}){ret} {{",
                snake(&f.name),
                params.join(", ")
            );
            let _ = writeln!(
                out,
                "    let r = eryx_ffi::call_import(import(\"{}\"), vec![{}]);",
                f.name,
                args.join(", ")
            );
            match &f.result {
                Some(t) => {
                    let conv = self.decode(t, "r", &format!("\"{}\"", f.name), "\"result\"")?;
                    let _ = writeln!(out, "    {conv}\n}}\n");
                }
                None => {
                    let _ = writeln!(out, "    let _ = r;\n}}\n");
                }
            }
        }
        if !funcs.is_empty() {
            out.push_str(
                "/// The bindings' import `name` (aborts if the bindings lack it: a\n\
                 /// runtime built for another WIT).\n\
                 fn import(name: &str) -> eryx_ffi::ImportFunc {\n\
                 \x20   eryx_ffi::wit().import_funcs().find(|f| f.interface().is_none() && f.name() == name)\n\
                 \x20       .unwrap_or_else(|| eryx_ffi::bug(&[\"the bindings have no import `\", name, \"`: rebuild with `cargo xtask dist`\"].concat()))\n\
                 }\n\n",
            );
        }
        self.out.push_str(&out);
        Ok(())
    }

    /// `from_value` for the records that parameters use.
    fn record_decoders(&mut self) -> Result<()> {
        let mut done = 0;
        while done < self.param_records.len() {
            let id = self.param_records[done];
            done += 1;
            let def = &self.resolve.types[id];
            let TypeDefKind::Record(r) = &def.kind else {
                continue;
            };
            let rust = camel(def.name.as_deref().unwrap_or(""));
            let fields = r.fields.clone();
            let mut out = format!(
                "impl {rust} {{\n    /// Reads the record from the value stack (fields in WIT order); aborts,\n    /// naming the export, when it has another shape.\n    pub fn from_value(v: Option<Value>, func: &str, param: &str) -> {rust} {{\n        let mut fields = match v {{ Some(Value::Record(f)) => f.into_iter(), other => eryx_ffi::world::bad_argument(func, param, other.as_ref()) }};\n        {rust} {{\n"
            );
            for f in &fields {
                let conv =
                    self.decode(&f.ty, "fields.next()", "func", &format!("\"{}\"", f.name))?;
                let _ = writeln!(out, "            {}: {conv},", snake(&f.name));
            }
            out.push_str("        }\n    }\n}\n\n");
            self.out.push_str(&out);
        }
        Ok(())
    }

    fn record(&mut self, name: &str, docs: &Docs, fields: &[wit_parser::Field]) -> Result<()> {
        let rust = camel(name);
        let mut out = String::new();
        doc(&mut out, docs, "", &format!("The WIT record `{name}`."));
        out.push_str("#[derive(Debug, Clone, PartialEq)]\n");
        let _ = writeln!(out, "pub struct {rust} {{");
        for f in fields {
            doc(
                &mut out,
                &f.docs,
                "    ",
                &format!("The field `{}`.", f.name),
            );
            let _ = writeln!(out, "    pub {}: {},", snake(&f.name), self.ty(&f.ty)?);
        }
        out.push_str("}\n\n");
        let _ = writeln!(out, "impl {rust} {{");
        out.push_str("    /// The record on the value stack (fields in WIT order).\n");
        out.push_str("    pub fn into_value(self) -> Value {\n        Value::Record(vec![\n");
        for f in fields {
            let _ = writeln!(
                out,
                "            {},",
                self.to_value(&f.ty, &format!("self.{}", snake(&f.name)))?
            );
        }
        out.push_str("        ])\n    }\n\n");
        out.push_str(
            "    /// Reads the record field by field (by the WIT names, in snake case)\n    /// from `src`.\n",
        );
        let _ = writeln!(
            out,
            "    pub fn read_from<S: Fields>(src: &S) -> Result<{rust}, S::Error>\n    where"
        );
        let mut bounds: Vec<String> = fields
            .iter()
            .map(|f| self.ty(&f.ty))
            .collect::<Result<_>>()?;
        bounds.sort();
        bounds.dedup();
        for b in bounds {
            let _ = writeln!(out, "        {b}: Field<S>,");
        }
        let _ = writeln!(out, "    {{\n        Ok({rust} {{");
        for f in fields {
            let _ = writeln!(
                out,
                "            {}: src.field(\"{}\")?,",
                snake(&f.name),
                snake(&f.name)
            );
        }
        out.push_str("        })\n    }\n}\n\n");
        self.out.push_str(&out);
        Ok(())
    }

    fn variant(&mut self, name: &str, docs: &Docs, cases: &[wit_parser::Case]) -> Result<()> {
        let rust = camel(name);
        let mut out = String::new();
        doc(&mut out, docs, "", &format!("The WIT variant `{name}`."));
        out.push_str("#[derive(Debug, Clone, PartialEq)]\n");
        let _ = writeln!(out, "pub enum {rust} {{");
        for c in cases {
            doc(
                &mut out,
                &c.docs,
                "    ",
                &format!("The case `{}`.", c.name),
            );
            match &c.ty {
                Some(t) => {
                    let _ = writeln!(out, "    {}({}),", camel(&c.name), self.ty(t)?);
                }
                None => {
                    let _ = writeln!(out, "    {},", camel(&c.name));
                }
            }
        }
        out.push_str("}\n\n");
        let _ = writeln!(out, "impl {rust} {{");
        out.push_str(
            "    /// The WIT names of the cases, in order (their indices on the stack).\n",
        );
        let names: Vec<String> = cases.iter().map(|c| format!("\"{}\"", c.name)).collect();
        let _ = writeln!(
            out,
            "    pub const CASES: &[&str] = &[{}];\n",
            names.join(", ")
        );
        out.push_str("    /// The case on the value stack.\n");
        out.push_str("    pub fn into_value(self) -> Value {\n        match self {\n");
        for (i, c) in cases.iter().enumerate() {
            match &c.ty {
                Some(t) => {
                    let _ = writeln!(
                        out,
                        "            {rust}::{}(v) => Value::case({i}, {}),",
                        camel(&c.name),
                        self.to_value(t, "v")?
                    );
                }
                None => {
                    let _ = writeln!(
                        out,
                        "            {rust}::{} => Value::Variant({i}, None),",
                        camel(&c.name)
                    );
                }
            }
        }
        out.push_str("        }\n    }\n}\n\n");
        self.out.push_str(&out);
        Ok(())
    }

    fn exports(&mut self, funcs: &[&Function]) -> Result<()> {
        let mut out = String::new();
        out.push_str(
            "/// The exports of the sandbox world: what the runtime implements.\npub trait Exports {\n",
        );
        for f in funcs {
            doc(
                &mut out,
                &f.docs,
                "    ",
                &format!("The export `{}`.", f.name),
            );
            let (params, ret) = self.signature(f)?;
            let _ = writeln!(
                out,
                "    fn {}({}){ret};",
                snake(&f.name),
                params.join(", ")
            );
        }
        out.push_str("}\n\n");
        let names: Vec<String> = funcs.iter().map(|f| format!("\"{}\"", f.name)).collect();
        out.push_str("/// The names of the exports.\n");
        let _ = writeln!(
            out,
            "pub const EXPORTS: &[&str] = &[{}];\n",
            names.join(", ")
        );
        out.push_str(
            "/// Runs export `name` of `E` on the arguments popped from the value stack;\n\
             /// returns its result (`None` for an export without one).\n\
             pub fn call<E: Exports>(name: &str, args: Vec<Value>) -> Option<Value> {\n\
             \x20   let mut args = args.into_iter();\n\
             \x20   match name {\n",
        );
        for f in funcs {
            let _ = writeln!(out, "        \"{}\" => {{", f.name);
            for p in &f.params {
                let conv = self.decode(
                    &p.ty,
                    "args.next()",
                    &format!("\"{}\"", f.name),
                    &format!("\"{}\"", p.name),
                )?;
                let _ = writeln!(out, "            let {} = {conv};", snake(&p.name));
            }
            let call = format!(
                "E::{}({})",
                snake(&f.name),
                f.params
                    .iter()
                    .map(|p| snake(&p.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            match &f.result {
                Some(t) => {
                    let _ = writeln!(out, "            let r = {call};");
                    let _ = writeln!(out, "            Some({})", self.to_value(t, "r")?);
                }
                None => {
                    let _ = writeln!(out, "            {call};\n            None");
                }
            }
            out.push_str("        }\n");
        }
        out.push_str(
            "        other => eryx_ffi::bug(&[\"unknown export `\", other, \"`\"].concat()),\n    }\n}\n\n",
        );
        self.out.push_str(&out);
        Ok(())
    }
}

/// Generates `eryx-runtime/src/world.rs` from the WIT text.
pub(crate) fn guest_world(wit: &str) -> Result<String> {
    let mut resolve = Resolve::default();
    let pkg = resolve.push_str(WIT, wit).context("parsing the WIT")?;
    let world_id = resolve
        .select_world(&[pkg], Some(eryx_linker::SANDBOX_WORLD))
        .context("selecting the sandbox world")?;
    let world = &resolve.worlds[world_id];
    let mut types: Vec<TypeId> = Vec::new();
    let mut imports: Vec<&Function> = Vec::new();
    for item in world.imports.values() {
        match item {
            WorldItem::Type { id, .. } => types.push(*id),
            WorldItem::Function(f) => imports.push(f),
            WorldItem::Interface { .. } => bail!("interface imports are not supported yet"),
        }
    }
    let mut funcs = Vec::new();
    for (key, item) in &world.exports {
        match (key, item) {
            (WorldKey::Name(_), WorldItem::Function(f)) => funcs.push(f),
            _ => bail!("only world-level function exports are supported"),
        }
    }
    let mut g = Gen {
        resolve: &resolve,
        out: String::new(),
        param_records: Vec::new(),
    };
    let mut variants = Vec::new();
    for id in &types {
        let def = &resolve.types[*id];
        if def.owner != TypeOwner::World(world_id) {
            continue;
        }
        let name = def.name.as_deref().context("an unnamed world type")?;
        match &def.kind {
            TypeDefKind::Record(r) => g.record(name, &def.docs, &r.fields)?,
            TypeDefKind::Variant(v) => {
                g.variant(name, &def.docs, &v.cases)?;
                variants.push(format!("(\"{name}\", {}::CASES)", camel(name)));
            }
            other => bail!(
                "the world defines a {} type, which `cargo xtask codegen` does not map yet",
                other.as_str()
            ),
        }
    }
    g.exports(&funcs)?;
    g.imports(&imports)?;
    g.record_decoders()?;
    let layout = format!(
        "/// `sys.prefix` of the guest.\npub const GUEST_HOME: &str = {:?};\n\
         /// Where the host mounts the standard library (read-only).\npub const GUEST_STDLIB: &str = {:?};\n\
         /// Where the host mounts the user's packages (read-only, possibly absent).\npub const SITE_PACKAGES: &str = {:?};\n\n",
        eryx_linker::layout::GUEST_HOME,
        eryx_linker::layout::GUEST_STDLIB,
        eryx_linker::layout::SITE_PACKAGES,
    );
    let mut out = String::new();
    out.push_str(
        "//! The sandbox world as the runtime sees it: @generated by `cargo xtask codegen`\n\
         //! from `wit/sandbox.wit` (and the guest paths of `eryx_linker::layout`).\n\
         //! Do not edit: change the WIT and run `cargo xtask codegen`; the xtask\n\
         //! tests fail while this file is stale.\n\n\
         #![allow(clippy::redundant_closure, reason = \"generated: one closure shape for every type\")]\n\n\
         use eryx_ffi::world::{Field, Fields};\n\
         use eryx_ffi::{Value, Wit};\n\n",
    );
    out.push_str(&layout);
    out.push_str(&g.out);
    let _ = writeln!(
        out,
        "/// Every variant this file builds by case index, with its case names.\nconst VARIANTS: &[(&str, &[&str])] = &[{}];\n",
        variants.join(", ")
    );
    out.push_str(
        "/// Checks the bindings' metadata against this file (see\n\
         /// [`eryx_ffi::world::check_world`]).\n\
         pub fn check(wit: Wit) {\n    eryx_ffi::world::check_world(wit, EXPORTS, VARIANTS);\n}\n",
    );
    rustfmt(&out)
}

/// Formats generated Rust the way `cargo fmt` does.
fn rustfmt(source: &str) -> Result<String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("rustfmt")
        .args(["--edition", "2024", "--emit", "stdout"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run rustfmt (install it with `rustup component add rustfmt`)")?;
    child
        .stdin
        .take()
        .context("rustfmt's stdin")?
        .write_all(source.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "rustfmt refused the generated code (a bug in xtask/src/codegen.rs): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The generated files match `wit/sandbox.wit` (run `cargo xtask
    /// codegen` after changing it).
    #[test]
    fn generated_files_are_current() {
        codegen(&crate::root(), true).unwrap();
    }

    /// A stale or missing generated file is named with the fix; writing
    /// them makes the check pass.
    #[test]
    fn stale_files_are_named_with_the_fix() {
        let tmp = tempfile::tempdir().unwrap();
        for dir in [
            "wit",
            "eryx-linker/wit",
            "eryx-host/wit",
            "eryx-runtime/src",
        ] {
            std::fs::create_dir_all(tmp.path().join(dir)).unwrap();
        }
        std::fs::copy(crate::root().join(WIT), tmp.path().join(WIT)).unwrap();
        std::fs::write(tmp.path().join(WIT_COPIES[0]), "stale").unwrap();
        let err = codegen(tmp.path(), true).unwrap_err().to_string();
        for path in WIT_COPIES.iter().chain([&GUEST_WORLD]) {
            assert!(err.contains(path), "{err}");
        }
        assert!(err.contains("run `cargo xtask codegen`"), "{err}");
        codegen(tmp.path(), false).unwrap();
        codegen(tmp.path(), true).unwrap();
    }

    #[test]
    fn names() {
        assert_eq!(camel("python-exception"), "PythonException");
        assert_eq!(snake("type-name"), "type_name");
    }
}
