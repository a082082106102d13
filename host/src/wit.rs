//! The `troupe:actor` WIT package (`wit/actor.wit`) as Rust: the types and
//! host traits wasmtime's `bindgen!` generates from it, and `wit_enum!`,
//! which defines a Rust enum once together with its WIT, JSON, manifest
//! and command-line names.
//!
//! This sits at the bottom of the crate, beside the engine: the actor
//! layer implements the generated host traits, and the supervision policy
//! and the actor layer define their enums against the generated types.

pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "troupe:actor/actor",
        imports: { default: async | trappable },
        exports: { default: async },
        // A durable actor's host-call results are recorded for replay
        // (`crate::actor::tape`).
        additional_derives: [serde::Serialize, serde::Deserialize],
    });
}

pub(crate) use bindings::troupe::actor::types;

/// Defines an enum that a WIT enum of `troupe:actor/types` mirrors, from
/// one list of variants: the Rust type, its serde name (JSON, TOML), its
/// `clap` value (with the `cli` feature), and the conversions to and from
/// the generated WIT type, both exhaustive, so that a variant added on one
/// side and not the other does not compile.
///
/// ```ignore
/// wit_enum! {
///     /// When a supervisor restarts a child.
///     pub enum RestartType => crate::wit::types::RestartType {
///         /// Always restarted.
///         #[default]
///         Permanent = "permanent",
///         /// Restarted after a failure only.
///         Transient = "transient",
///     }
/// }
/// ```
macro_rules! wit_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident => $wit:path {
            $(
                $(#[$vmeta:meta])*
                $variant:ident = $text:literal
            ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
        pub enum $name {
            $(
                $(#[$vmeta])*
                #[serde(rename = $text)]
                #[cfg_attr(feature = "cli", value(name = $text))]
                $variant,
            )+
        }

        impl $name {
            /// Every variant, in WIT order.
            pub const ALL: &[$name] = &[$($name::$variant),+];

            /// Its name in WIT (and in JSON, and on the command line).
            pub fn wit_name(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl From<$name> for $wit {
            fn from(value: $name) -> Self {
                match value {
                    $($name::$variant => <$wit>::$variant,)+
                }
            }
        }

        impl From<$wit> for $name {
            fn from(value: $wit) -> Self {
                match value {
                    $(<$wit>::$variant => $name::$variant,)+
                }
            }
        }
    };
}
pub(crate) use wit_enum;
