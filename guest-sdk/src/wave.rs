//! [`Wave`]: Rust values to and from WAVE, the text messages travel in.
//!
//! Implemented for the WIT primitive types, `String`, `Vec<T>`,
//! `Option<T>`, `Result<T, E>`, tuples, and `()` (the reply of a function
//! without a result). [`wave_record!`](crate::wave_record) implements it for
//! a struct that mirrors a WIT `record`, [`wave_enum!`](crate::wave_enum)
//! for a Rust enum that mirrors a WIT `enum`.

use std::borrow::Cow;
use std::fmt;

pub use wasm_wave::value::{Type, Value};
pub use wasm_wave::wasm::WasmValue;

/// A value that does not have the expected type or shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaveError(pub String);

impl fmt::Display for WaveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WaveError {}

/// A Rust type with a WIT counterpart.
pub trait Wave {
    /// True only for `()`: "no value", as in `result<_, string>` or the
    /// reply of a function without a result.
    const UNIT: bool = false;

    /// The WIT type.
    fn wave_type() -> Type;
    /// This value as a WAVE value.
    fn to_value(&self) -> Value;
    /// Converts a WAVE value of [`Wave::wave_type`] back.
    ///
    /// # Errors
    ///
    /// [`WaveError`] if the value does not fit `Self`.
    fn from_value(value: &Value) -> Result<Self, WaveError>
    where
        Self: Sized,
    {
        Err(WaveError(format!("cannot decode {} into this type", wasm_wave::to_string(value).unwrap_or_default())))
    }

    /// This value as WAVE text.
    fn to_wave(&self) -> String {
        wasm_wave::to_string(&self.to_value()).unwrap_or_default()
    }

    /// Parses an ask's reply text.
    ///
    /// # Errors
    ///
    /// [`WaveError`] if the text is not WAVE of this type.
    fn from_reply(text: &str) -> Result<Self, WaveError>
    where
        Self: Sized,
    {
        let value: Value = wasm_wave::from_str(&Self::wave_type(), text).map_err(|e| WaveError(e.to_string()))?;
        Self::from_value(&value)
    }
}

impl<T: Wave + ?Sized> Wave for &T {
    fn wave_type() -> Type {
        T::wave_type()
    }
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}

macro_rules! primitive {
    ($($ty:ty => $const:ident, $make:ident, $unwrap:ident;)*) => {$(
        impl Wave for $ty {
            fn wave_type() -> Type { Type::$const }
            fn to_value(&self) -> Value { Value::$make(*self) }
            fn from_value(value: &Value) -> Result<Self, WaveError> { Ok(value.$unwrap()) }
        }
    )*};
}

primitive! {
    bool => BOOL, make_bool, unwrap_bool;
    u8 => U8, make_u8, unwrap_u8;
    u16 => U16, make_u16, unwrap_u16;
    u32 => U32, make_u32, unwrap_u32;
    u64 => U64, make_u64, unwrap_u64;
    i8 => S8, make_s8, unwrap_s8;
    i16 => S16, make_s16, unwrap_s16;
    i32 => S32, make_s32, unwrap_s32;
    i64 => S64, make_s64, unwrap_s64;
    f32 => F32, make_f32, unwrap_f32;
    f64 => F64, make_f64, unwrap_f64;
    char => CHAR, make_char, unwrap_char;
}

impl Wave for String {
    fn wave_type() -> Type {
        Type::STRING
    }
    fn to_value(&self) -> Value {
        Value::make_string(Cow::Borrowed(self))
    }
    fn from_value(value: &Value) -> Result<Self, WaveError> {
        Ok(value.unwrap_string().into_owned())
    }
}

impl Wave for str {
    fn wave_type() -> Type {
        Type::STRING
    }
    fn to_value(&self) -> Value {
        Value::make_string(Cow::Borrowed(self))
    }
}

impl<T: Wave> Wave for Vec<T> {
    fn wave_type() -> Type {
        Type::list(T::wave_type())
    }
    fn to_value(&self) -> Value {
        let items = self.iter().map(Wave::to_value);
        Value::make_list(&Self::wave_type(), items).expect("list items have the element type")
    }
    fn from_value(value: &Value) -> Result<Self, WaveError> {
        value.unwrap_list().map(|v| T::from_value(&v)).collect()
    }
}

impl<T: Wave> Wave for Option<T> {
    fn wave_type() -> Type {
        Type::option(T::wave_type())
    }
    fn to_value(&self) -> Value {
        Value::make_option(&Self::wave_type(), self.as_ref().map(Wave::to_value)).expect("payload has the some type")
    }
    fn from_value(value: &Value) -> Result<Self, WaveError> {
        value.unwrap_option().map(|v| T::from_value(&v)).transpose()
    }
}

fn payload_type<T: Wave>() -> Option<Type> {
    (!T::UNIT).then(T::wave_type)
}

fn payload_value<T: Wave>(v: &T) -> Option<Value> {
    (!T::UNIT).then(|| v.to_value())
}

fn from_payload<T: Wave>(value: Option<&Value>) -> Result<T, WaveError> {
    match value {
        Some(v) => T::from_value(v),
        None if T::UNIT => T::from_value(&Value::make_bool(false)),
        None => Err(WaveError("missing result payload".into())),
    }
}

impl<T: Wave, E: Wave> Wave for Result<T, E> {
    fn wave_type() -> Type {
        Type::result(payload_type::<T>(), payload_type::<E>())
    }
    fn to_value(&self) -> Value {
        let payload = match self {
            Ok(v) => Ok(payload_value(v)),
            Err(e) => Err(payload_value(e)),
        };
        Value::make_result(&Self::wave_type(), payload).expect("payload has the result's type")
    }
    fn from_value(value: &Value) -> Result<Self, WaveError> {
        match value.unwrap_result() {
            Ok(v) => Ok(Ok(from_payload(v.as_deref())?)),
            Err(e) => Ok(Err(from_payload(e.as_deref())?)),
        }
    }
}

impl Wave for () {
    const UNIT: bool = true;

    fn wave_type() -> Type {
        Type::tuple(Vec::new()).unwrap_or(Type::BOOL)
    }
    fn to_value(&self) -> Value {
        Value::make_tuple(&Self::wave_type(), std::iter::empty()).expect("empty tuple")
    }
    fn from_value(_: &Value) -> Result<Self, WaveError> {
        Ok(())
    }
    // A function without a result replies with empty text.
    fn from_reply(text: &str) -> Result<Self, WaveError> {
        if text.trim().is_empty() { Ok(()) } else { Err(WaveError(format!("expected no result, got `{text}`"))) }
    }
}

macro_rules! tuple {
    ($($name:ident $idx:tt),+) => {
        impl<$($name: Wave),+> Wave for ($($name,)+) {
            fn wave_type() -> Type {
                Type::tuple(vec![$($name::wave_type()),+]).expect("non-empty tuple")
            }
            fn to_value(&self) -> Value {
                Value::make_tuple(&Self::wave_type(), vec![$(self.$idx.to_value()),+]).expect("tuple items have their types")
            }
            fn from_value(value: &Value) -> Result<Self, WaveError> {
                let items: Vec<Cow<'_, Value>> = value.unwrap_tuple().collect();
                Ok(($($name::from_value(items.get($idx).ok_or_else(|| WaveError("tuple too short".into()))?)?,)+))
            }
        }
    };
}

tuple!(A 0);
tuple!(A 0, B 1);
tuple!(A 0, B 1, C 2);
tuple!(A 0, B 1, C 2, D 3);
tuple!(A 0, B 1, C 2, D 3, E 4);
tuple!(A 0, B 1, C 2, D 3, E 4, F 5);

/// Converts a Rust identifier to a WIT name: `snake_case` → `kebab-case`.
#[doc(hidden)]
pub fn wit_name(rust: &str) -> String {
    rust.trim_start_matches("r#").replace('_', "-")
}

/// Defines a struct that mirrors a WIT `record` and implements [`Wave`] for
/// it. Field names map `snake_case` → `kebab-case`.
///
/// ```ignore
/// troupe_guest::wave_record! {
///     /// A chat line.
///     #[derive(Debug, Clone, PartialEq)]
///     pub struct Line { pub sender: String, pub text: String }
/// }
/// ```
#[macro_export]
macro_rules! wave_record {
    ($(#[$meta:meta])* $vis:vis struct $name:ident { $($(#[$fmeta:meta])* $fvis:vis $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        $vis struct $name { $($(#[$fmeta])* $fvis $field: $ty),* }

        impl $crate::wave::Wave for $name {
            fn wave_type() -> $crate::wave::Type {
                $crate::wave::Type::record([$(($crate::wave::wit_name(stringify!($field)), <$ty as $crate::wave::Wave>::wave_type())),*])
                    .expect("a record has at least one field")
            }
            fn to_value(&self) -> $crate::wave::Value {
                use $crate::wave::WasmValue as _;
                let names = [$($crate::wave::wit_name(stringify!($field))),*];
                let values = [$($crate::wave::Wave::to_value(&self.$field)),*];
                $crate::wave::Value::make_record(
                    &Self::wave_type(),
                    names.iter().map(String::as_str).zip(values),
                ).expect("fields have their types")
            }
            fn from_value(value: &$crate::wave::Value) -> Result<Self, $crate::wave::WaveError> {
                use $crate::wave::WasmValue as _;
                let fields: Vec<(String, $crate::wave::Value)> =
                    value.unwrap_record().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
                let get = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
                    .ok_or_else(|| $crate::wave::WaveError(format!("missing field `{name}`")));
                Ok($name { $($field: <$ty as $crate::wave::Wave>::from_value(&get(&$crate::wave::wit_name(stringify!($field)))?)?),* })
            }
        }
    };
}

/// Defines a fieldless enum that mirrors a WIT `enum` and implements
/// [`Wave`] for it. Case names map `CamelCase` → `camel-case`.
#[macro_export]
macro_rules! wave_enum {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$cmeta:meta])* $case:ident),* $(,)? }) => {
        $(#[$meta])*
        $vis enum $name { $($(#[$cmeta])* $case),* }

        impl $crate::wave::Wave for $name {
            fn wave_type() -> $crate::wave::Type {
                $crate::wave::Type::enum_ty([$($crate::wave::kebab(stringify!($case))),*]).expect("an enum has cases")
            }
            fn to_value(&self) -> $crate::wave::Value {
                use $crate::wave::WasmValue as _;
                let case = match self { $($name::$case => $crate::wave::kebab(stringify!($case))),* };
                $crate::wave::Value::make_enum(&Self::wave_type(), &case).expect("a declared case")
            }
            fn from_value(value: &$crate::wave::Value) -> Result<Self, $crate::wave::WaveError> {
                use $crate::wave::WasmValue as _;
                let case = value.unwrap_enum();
                $(if case == $crate::wave::kebab(stringify!($case)) { return Ok($name::$case); })*
                Err($crate::wave::WaveError(format!("unknown case `{case}`")))
            }
        }
    };
}

/// `CamelCase` → `camel-case`.
#[doc(hidden)]
pub fn kebab(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call;

    fn round_trip<T: Wave + PartialEq + fmt::Debug>(value: T, wave: &str) {
        assert_eq!(value.to_wave(), wave);
        assert_eq!(T::from_reply(wave).unwrap(), value);
    }

    crate::wave_record! {
        #[derive(Debug, Clone, PartialEq)]
        struct Line { sender: String, sent_at: u64 }
    }

    crate::wave_enum! {
        #[derive(Debug, Clone, Copy, PartialEq)]
        enum Mood { Happy, VeryGrumpy }
    }

    #[test]
    fn primitives_and_containers_round_trip() {
        round_trip(42u64, "42");
        round_trip(-7i32, "-7");
        round_trip(true, "true");
        round_trip('x', "'x'");
        round_trip(String::from("say \"hi\"\n"), r#""say \"hi\"\n""#);
        round_trip(vec![1u8, 2, 3], "[1, 2, 3]");
        round_trip(Some(String::from("a")), r#"some("a")"#);
        round_trip(None::<u32>, "none");
        round_trip(Ok::<u32, String>(5), "ok(5)");
        round_trip(Err::<u32, String>("no".into()), r#"err("no")"#);
        round_trip(Ok::<(), String>(()), "ok");
        round_trip((1u32, String::from("b")), r#"(1, "b")"#);
    }

    #[test]
    fn records_and_enums_map_names_to_kebab_case() {
        round_trip(Line { sender: "ada".into(), sent_at: 7 }, r#"{sender: "ada", sent-at: 7}"#);
        round_trip(Mood::VeryGrumpy, "very-grumpy");
        round_trip(vec![Mood::Happy], "[happy]");
    }

    #[test]
    fn unit_decodes_an_empty_reply_only() {
        assert_eq!(<()>::from_reply(""), Ok(()));
        assert!(<()>::from_reply("5").is_err());
    }

    #[test]
    fn a_reply_of_the_wrong_type_is_an_error_not_a_panic() {
        assert!(u64::from_reply(r#""five""#).is_err());
        assert!(String::from_reply("5").is_err());
        assert!(Line::from_reply("{sender: \"a\"}").is_err());
    }

    #[test]
    fn calls_render_as_wave() {
        assert_eq!(call!("incr", 5u64).text(), "incr(5)");
        assert_eq!(call!("get").text(), "get()");
        assert_eq!(call!("greet", "a\"b", 3u8).text(), r#"greet("a\"b", 3)"#);
        assert_eq!(crate::Call::raw("x(1)").text(), "x(1)");
    }
}
