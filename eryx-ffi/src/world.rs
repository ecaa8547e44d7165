//! Support for code generated from a world (eryx-runtime's `world.rs`, made
//! by `cargo xtask codegen`): reading records by field name, reporting an
//! argument of the wrong shape, and checking the bindings' metadata against
//! what the generated code was made from.

use crate::{Value, Wit, bug};

/// A source of records read by field name (each generated record's
/// `read_from` asks it for every field, by its WIT name in snake case).
pub trait Fields {
    /// Why a field could not be read.
    type Error;

    /// The field `name` as a `T`.
    fn field<T: Field<Self>>(&self, name: &'static str) -> Result<T, Self::Error>;
}

/// A Rust type that a [`Fields`] source can produce for a record field.
pub trait Field<S: Fields + ?Sized>: Sized {
    /// Reads field `name` of `src`.
    fn read(src: &S, name: &'static str) -> Result<Self, S::Error>;
}

/// Aborts for an export argument that arrived in another shape than the
/// generated code expects (the bindings come from another WIT).
#[cold]
pub fn bad_argument(func: &str, param: &str, found: Option<&Value>) -> ! {
    let found = found.map_or("nothing", Value::shape);
    bug(&[
        "export `",
        func,
        "`: parameter `",
        param,
        "` arrived as ",
        found,
        "; the bindings were generated from another wit/sandbox.wit: rebuild with \
         `cargo xtask dist`",
    ]
    .concat())
}

/// Checks the bindings' metadata: exactly these `exports`, in order, and
/// for each named variant exactly these case names (the generated code builds
/// variants by case index). A runtime built for another WIT aborts at start
/// instead of returning garbage.
pub fn check_world(wit: Wit, exports: &[&str], variants: &[(&str, &[&str])]) {
    let names: Vec<&str> = wit.export_funcs().map(|f| f.name()).collect();
    if names != exports {
        bug(&[
            "the bindings export [",
            &names.join(", "),
            "], this runtime implements [",
            &exports.join(", "),
            "]: rebuild with `cargo xtask dist`",
        ]
        .concat());
    }
    for (name, cases) in variants {
        let found: Option<Vec<&str>> = (0..wit.variant_count())
            .find(|&i| wit.variant_name(i) == Some(name))
            .map(|i| wit.variant_case_names(i).collect());
        if found.as_deref() != Some(*cases) {
            // Joined by hand: `{:?}` would link Debug's escaping tables
            // into the runtime (and `format!` its formatting machinery).
            let found = found.map_or("none".to_string(), |f| ["[", &f.join(", "), "]"].concat());
            bug(&[
                "the bindings' variant `",
                name,
                "` has cases ",
                &found,
                ", this runtime builds [",
                &cases.join(", "),
                "]: rebuild with `cargo xtask dist`",
            ]
            .concat());
        }
    }
}
