//! WAVE text to a type-checked [`Call`], and a call back to WAVE text.

use wasmtime::component::{Type, Val};

use super::{Function, MessageError, Protocol, TypeDisplay};

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
        let args = call
            .to_wasm_params::<Val>(f.params.iter().map(|(_, ty)| ty))
            .map_err(|e| MessageError::IllTyped { signature: f.signature(), reason: f.explain(&call, &e) })?
            .into_boxed_slice();
        Ok(Call { func, args, generation: 0 })
    }
}

impl Function {
    /// Says which argument of `call` did not fit and why, in terms of the
    /// signature rather than WAVE's byte offsets alone.
    fn explain(
        &self,
        call: &wasm_wave::untyped::UntypedFuncCall<'_>,
        error: &wasm_wave::parser::ParserError,
    ) -> String {
        let src = call.source();
        let args: Vec<&wasm_wave::ast::Node> =
            call.params_node().and_then(|p| p.as_tuple().ok()).map(|t| t.collect()).unwrap_or_default();
        let needed = self.params.iter().filter(|(_, ty)| !matches!(ty, Type::Option(_))).count();
        if args.len() > self.params.len() || args.len() < needed {
            return format!("expected {} argument(s), got {}", self.params.len(), args.len());
        }
        let at = error.span().start;
        let culprit = args.iter().zip(&self.params).find(|(node, _)| node.span().contains(&at));
        match culprit {
            Some((node, (name, ty))) => {
                let text = src.get(node.span()).map(|t| truncate(t, 40)).unwrap_or_default();
                let detail = error.detail().map(|d| format!(" ({d})")).unwrap_or_default();
                format!("argument `{name}` expects {}, got `{text}`: {}{detail}", TypeDisplay(ty), error.kind())
            }
            None => error.to_string(),
        }
    }
}

/// `s`, cut to at most `max` bytes (at a character boundary) and marked
/// as cut.
fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
