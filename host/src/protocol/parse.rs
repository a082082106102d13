//! WAVE text to a type-checked [`Call`], and a call back to WAVE text.

use wasmtime::component::{Type, Val};

use super::{Function, MessageError, Protocol, TypeDisplay, explain};

/// A type-checked message: which function, with which arguments.
#[derive(Debug, Clone)]
pub struct Call {
    /// Index of the function in its [`Protocol`].
    pub func: u32,
    /// The arguments, already of the function's parameter types.
    pub args: Box<[Val]>,
    /// Which of the receiver's code versions the call was checked against
    /// (0 for the first): after a hot swap, queued calls are mapped to the
    /// new protocol by function name.
    pub generation: u32,
}

impl Call {
    /// The call as WAVE text with its function fully qualified: the form a
    /// message takes when it leaves this host (see
    /// [`WireMessage`](crate::message::WireMessage)).
    pub fn to_wave(&self, protocol: &Protocol) -> String {
        let f = protocol.function(self.func);
        let mut text = f.qualified_name();
        text.push('(');
        for (i, arg) in self.args.iter().enumerate() {
            if i > 0 {
                text.push_str(", ");
            }
            // Values built by the parser or checked by `Protocol::check`
            // always render; a failure would be a wasmtime bug.
            text.push_str(&arg.to_wave().unwrap_or_default());
        }
        text.push(')');
        text
    }
}

impl Protocol {
    /// Parses and type-checks a WAVE call against this protocol.
    ///
    /// # Errors
    ///
    /// A [`MessageError`] naming the problem and the expected signature.
    pub fn parse(&self, text: &str, max_bytes: u64) -> Result<Call, MessageError> {
        let size = text.len() as u64;
        if size > max_bytes {
            return Err(MessageError::TooLarge { size, limit: max_bytes });
        }
        let text = text.trim();
        let syntax = |reason: String| MessageError::Syntax { text: truncate(text, 80), reason };
        let open = text.find('(').ok_or_else(|| syntax("expected `(` after the function name".into()))?;
        let name = text[..open].trim();
        if name.is_empty() {
            return Err(syntax("missing function name".into()));
        }
        let func = self.resolve(name)?;
        let f = self.function(func);
        if let Some(reason) = &f.unsupported {
            return Err(MessageError::Unsupported { signature: f.signature(), reason: reason.clone() });
        }
        // WAVE's call syntax takes a plain label as the name: hand it the
        // bare name and keep the qualifier to ourselves.
        let call_text = format!("{}{}", f.name, &text[open..]);
        let call = wasm_wave::untyped::UntypedFuncCall::parse(&call_text).map_err(|e| syntax(e.to_string()))?;
        let ill_typed = |reason: String| MessageError::IllTyped { signature: f.signature(), reason };
        let args = match call.to_wasm_params::<Val>(f.params.iter().map(|(_, ty)| ty)) {
            Ok(args) => args,
            // A misspelt field is told as such, not as the field it leaves
            // missing.
            Err(e) => return Err(ill_typed(f.unknown_field(&call).unwrap_or_else(|| f.explain(&call, &e)))),
        };
        // The conversion drops a field the record type lacks without a word.
        if f.takes_records
            && f.arguments(&call)
                .zip(&args)
                .any(|((node, _), val)| explain::names_unknown_field(node, val, call.source()))
        {
            let reason = f.unknown_field(&call).unwrap_or_else(|| "a record names a field its type lacks".into());
            return Err(ill_typed(reason));
        }
        Ok(Call { func, args: args.into_boxed_slice(), generation: 0 })
    }
}

impl Function {
    /// The arguments of `call` paired with this function's parameters, in
    /// order (as many pairs as the shorter of the two has items).
    fn arguments<'c>(
        &self,
        call: &'c wasm_wave::untyped::UntypedFuncCall<'_>,
    ) -> impl Iterator<Item = (&'c wasm_wave::ast::Node, &(String, Type))> {
        call.params_node().and_then(|p| p.as_tuple().ok()).into_iter().flatten().zip(&self.params)
    }

    /// The first record field `call` names that its type lacks, said as
    /// [`Function::explain`] says a misfit.
    fn unknown_field(&self, call: &wasm_wave::untyped::UntypedFuncCall<'_>) -> Option<String> {
        let src = call.source();
        self.arguments(call).find_map(|(node, (name, ty))| {
            let detail = explain::unknown_field(name, node, ty, src)?;
            Some(argument_misfit(name, ty, node, src, &detail))
        })
    }

    /// Says which argument of `call` did not fit and why, in terms of the
    /// signature rather than WAVE's byte offsets alone: down to the field
    /// or element inside the argument (see [`explain`]).
    fn explain(
        &self,
        call: &wasm_wave::untyped::UntypedFuncCall<'_>,
        error: &wasm_wave::parser::ParserError,
    ) -> String {
        let src = call.source();
        let given = call.params_node().and_then(|p| p.as_tuple().ok()).map_or(0, |t| t.len());
        let needed = self.params.iter().filter(|(_, ty)| !matches!(ty, Type::Option(_))).count();
        if given > self.params.len() || given < needed {
            return format!("expected {} argument(s), got {given}", self.params.len());
        }
        let at = error.span().start;
        let culprit = self.arguments(call).find(|(node, _)| node.span().contains(&at));
        match culprit {
            Some((node, (name, ty))) => {
                argument_misfit(name, ty, node, src, &explain::misfit(name, node, ty, src, error))
            }
            None => error.to_string(),
        }
    }
}

/// How a misfit of argument `name`, of type `ty`, given as `node`, is
/// said: "argument `p` expects u8, got `"a"`: " and then `detail`.
fn argument_misfit(name: &str, ty: &Type, node: &wasm_wave::ast::Node, src: &str, detail: &str) -> String {
    let text = src.get(node.span()).map(|t| truncate(t, explain::QUOTED_BYTES)).unwrap_or_default();
    format!("argument `{name}` expects {}, got `{text}`: {detail}", TypeDisplay(ty))
}

/// `s`, cut to at most `max` bytes (at a character boundary) and marked
/// as cut.
pub(super) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {

    use super::*;

    /// The protocol of a component exporting `wit`'s `acme:x/api`, whose
    /// functions do nothing: only their types matter here.
    fn protocol() -> Protocol {
        let wit = "package acme:x@0.1.0;
             interface api {
               record address { street: string, city: string }
               record person { name: string, age: u8, home: address, nick: option<string> }
               greet: func(p: person) -> u8;
               group: func(people: list<person>) -> u32;
               enum color { red, green }
               variant shape { dot, circle(u32) }
               flags perms { read, write }
               paint: func(c: color, s: shape, p: perms);
               relocate: func(to: option<address>, via: result<address, address>);
             }
             world w { export api; }";
        let wat = r#"(module
             (memory (export "memory") 1)
             (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 8)
             (func (export "acme:x/api@0.1.0#greet")
               (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32) i32.const 0)
             (func (export "acme:x/api@0.1.0#group") (param i32 i32) (result i32) i32.const 0)
             (func (export "acme:x/api@0.1.0#paint") (param i32 i32 i32 i32))
             (func (export "acme:x/api@0.1.0#relocate") (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32)))"#;
        super::super::kinds::protocol_of(wit, wat)
    }

    /// Why `text` is refused: the reason of the ill-typed message error
    /// it must be.
    fn refusal(text: &str) -> String {
        match protocol().parse(text, 1 << 20) {
            Err(MessageError::IllTyped { reason, .. }) => reason,
            other => panic!("`{text}` should be ill-typed, got {other:?}"),
        }
    }

    const PERSON: &str = "record { name: string, age: u8, home: record { street: string, city: string }, \
                          nick: option<string> }";
    const HOME: &str = r#"home: {street: "s", city: "c"}"#;

    #[test]
    fn a_record_missing_a_field_names_the_field_and_its_type() {
        assert_eq!(
            refusal(r#"greet({name: "a"})"#),
            format!(r#"argument `p` expects {PERSON}, got `{{name: "a"}}`: missing field `p.age` (u8)"#)
        );
        let err = refusal(r#"greet({name: "a", age: 3, home: {street: "s"}})"#);
        assert!(err.ends_with(": missing field `p.home.city` (string)"), "{err}");
        let err = refusal(&format!(r#"group([{{name: "a", age: 3, {HOME}}}, {{name: "b", {HOME}}}])"#));
        assert!(err.ends_with(": missing field `people[1].age` (u8)"), "{err}");
    }

    #[test]
    fn a_record_with_a_field_its_type_lacks_is_refused_naming_the_field() {
        let err = refusal(&format!(r#"greet({{name: "a", age: 3, {HOME}, agee: 4}})"#));
        assert!(err.ends_with(": unknown field `p.agee`; the record has `name`, `age`, `home`, `nick`"), "{err}");
        let err = refusal(r#"greet({name: "a", age: 3, home: {street: "s", city: "c", zip: 1}})"#);
        assert!(err.ends_with(": unknown field `p.home.zip`; the record has `street`, `city`"), "{err}");
        let err = refusal(&format!(r#"group([{{name: "a", age: 3, {HOME}}}, {{name: "b", age: 4, {HOME}, x: 1}}])"#));
        assert!(err.ends_with(": unknown field `people[1].x`; the record has `name`, `age`, `home`, `nick`"), "{err}");
        // In payloads, with `some(...)` and `ok(...)` or without.
        let here = r#"{street: "s", city: "c"}"#;
        let there = r#"{street: "s", city: "c", zip: 1}"#;
        for (message, field) in [
            (format!("relocate(some({there}), ok({here}))"), "to.zip"),
            (format!("relocate({there}, {here})"), "to.zip"),
            (format!("relocate(none, {there})"), "via.zip"),
            (format!("relocate(none, err({there}))"), "via.zip"),
        ] {
            let err = refusal(&message);
            assert!(err.ends_with(&format!(": unknown field `{field}`; the record has `street`, `city`")), "{err}");
        }
        // A misspelt field is reported as such, not as the field it leaves missing.
        let err = refusal(&format!(r#"greet({{name: "a", agee: 3, {HOME}}})"#));
        assert!(err.contains(": unknown field `p.agee`;"), "{err}");
    }

    #[test]
    fn a_field_of_the_wrong_type_is_named_with_the_type_it_expects() {
        let err = refusal(&format!(r#"greet({{name: 5, age: 3, {HOME}}})"#));
        assert!(err.ends_with(": field `p.name` expects string, got `5`: invalid value type"), "{err}");
        let err = refusal(r#"greet({name: "a", age: 3, home: {street: "s", city: 7}})"#);
        assert!(err.ends_with(": field `p.home.city` expects string, got `7`: invalid value type"), "{err}");
        let err = refusal(&format!(r#"greet({{name: "a", age: 300, {HOME}}})"#));
        assert!(err.ends_with(": field `p.age` expects u8, got `300`: invalid value"), "{err}");
        let err = refusal(r#"greet({name: "a", age: 3, home: "x"})"#);
        assert!(
            err.ends_with(
                ": field `p.home` expects record { street: string, city: string }, got `\"x\"`: invalid value type"
            ),
            "{err}"
        );
        let err = refusal(&format!(r#"group([{{name: "a", age: 3, {HOME}, nick: some(1)}}])"#));
        assert!(
            err.ends_with(": field `people[0].nick` expects option<string>, got `some(1)`: invalid value type"),
            "{err}"
        );
        let err = refusal("group([1])");
        assert!(
            err.ends_with(&format!(": element `people[0]` expects {PERSON}, got `1`: invalid value type")),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_case_or_flag_and_a_misplaced_payload_are_named() {
        let err = refusal("paint(blue, dot, {})");
        assert_eq!(err, "argument `c` expects enum { red, green }, got `blue`: unknown case `blue`");
        let err = refusal("paint(red, square, {})");
        assert!(err.ends_with("got `square`: unknown case `square`"), "{err}");
        let err = refusal("paint(red, circle, {})");
        assert!(err.ends_with("got `circle`: case `circle` takes a payload"), "{err}");
        let err = refusal("paint(red, dot(1), {})");
        assert!(err.ends_with("got `dot(1)`: case `dot` takes no payload"), "{err}");
        let err = refusal("paint(red, dot, {read, exec})");
        assert_eq!(err, "argument `p` expects flags { read, write }, got `{read, exec}`: unknown flag `exec`");
    }

    #[test]
    fn a_well_formed_record_is_accepted_with_its_optional_fields_defaulted() {
        let call = protocol().parse(&format!(r#"greet({{name: "a", age: 3, {HOME}}})"#), 1 << 20).unwrap();
        let Val::Record(fields) = &call.args[0] else { panic!("{:?}", call.args) };
        let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["name", "age", "home", "nick"]);
        assert_eq!(fields[3].1, Val::Option(None));
        let here = r#"{street: "s", city: "c"}"#;
        for message in [
            format!("relocate(some({here}), ok({here}))"),
            format!("relocate({here}, {here})"),
            format!("relocate(none, err({here}))"),
        ] {
            protocol().parse(&message, 1 << 20).unwrap_or_else(|e| panic!("{message}: {e}"));
        }
    }
}
