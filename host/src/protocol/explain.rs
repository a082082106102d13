//! Where inside an argument a WAVE value does not fit its parameter's
//! type, and which record fields a value names that its type lacks.
//!
//! WAVE's conversion (`to_wasm_params`) reports a misfit as a byte span
//! and a kind ("invalid value type"), a missing record field only in the
//! error's source, and it drops a field the record type does not have
//! without a word. Here both are said in terms of the argument: a path
//! from the argument's name through record fields and list or tuple
//! elements (`p.home.city`, `people[1].age`), the type expected there and
//! the text found. The payload of an option, a result or a variant case
//! adds no step: the path names the field or element that holds it.
//!
//! Whether a converted message named a field its type lacks is asked of
//! every message whose function takes a record, so that question is
//! answered from the text and the converted value alone
//! ([`names_unknown_field`]), comparing names without looking types up;
//! the typed walks that say where and why run only for a refusal.

use std::error::Error as _;

use wasm_wave::ast::{Node, NodeType};
use wasm_wave::parser::ParserError;
use wasm_wave::wasm::WasmValueError;
use wasmtime::component::{Type, Val};

use super::TypeDisplay;
use super::parse::truncate;

/// How much of a value an explanation quotes.
pub(super) const QUOTED_BYTES: usize = 40;

/// One named step down into a value.
#[derive(Clone, Copy)]
enum Step<'s> {
    /// A record field, by name.
    Field(&'s str),
    /// A list or tuple element, by index.
    Element(usize),
}

/// A value inside another, with its type and how it is reached (`None`
/// for a payload).
struct Child<'n, 's> {
    step: Option<Step<'s>>,
    node: &'n Node,
    ty: Type,
}

/// The values directly inside `node`, where its shape matches `ty`, with
/// their types: the fields its record type has, list and tuple elements,
/// and the payloads of options, results and variant cases (a value given
/// without `some(...)` or `ok(...)` is its own payload, as WAVE reads it).
/// Nothing where the shape does not match: conversion reports that.
fn children<'n, 's>(node: &'n Node, ty: &Type, src: &'s str) -> Vec<Child<'n, 's>> {
    let payload = |node: &'n Node, ty: Type| Child { step: None, node, ty };
    match ty {
        Type::Record(record) => node
            .as_record(src)
            .map(|fields| {
                fields
                    .filter_map(|(name, node)| {
                        let field = record.fields().find(|f| f.name == name)?;
                        Some(Child { step: Some(Step::Field(name)), node, ty: field.ty })
                    })
                    .collect()
            })
            .unwrap_or_default(),
        Type::List(list) => {
            let element = list.ty();
            node.as_list()
                .map(|items| {
                    items
                        .enumerate()
                        .map(|(i, node)| Child { step: Some(Step::Element(i)), node, ty: element.clone() })
                        .collect()
                })
                .unwrap_or_default()
        }
        Type::Tuple(tuple) => node
            .as_tuple()
            .map(|items| {
                items
                    .zip(tuple.types())
                    .enumerate()
                    .map(|(i, (node, ty))| Child { step: Some(Step::Element(i)), node, ty })
                    .collect()
            })
            .unwrap_or_default(),
        Type::Option(option) => match node.ty() {
            NodeType::OptionSome | NodeType::OptionNone => {
                node.as_option().ok().flatten().map(|node| payload(node, option.ty())).into_iter().collect()
            }
            _ if flattenable(&option.ty()) => vec![payload(node, option.ty())],
            _ => Vec::new(),
        },
        Type::Result(result) => match node.as_result() {
            Ok(Ok(Some(node))) => result.ok().map(|ty| payload(node, ty)).into_iter().collect(),
            Ok(Err(Some(node))) => result.err().map(|ty| payload(node, ty)).into_iter().collect(),
            Ok(_) => Vec::new(),
            Err(_) => result.ok().filter(flattenable).map(|ty| payload(node, ty)).into_iter().collect(),
        },
        Type::Variant(variant) => match node.as_variant(src) {
            Ok((case, Some(node))) => variant
                .cases()
                .find(|c| c.name == case)
                .and_then(|c| c.ty)
                .map(|ty| payload(node, ty))
                .into_iter()
                .collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// May a value of `ty` be given as WAVE without `some(...)` or `ok(...)`
/// around it? (WAVE's rule: unless it is itself an option or a result.)
fn flattenable(ty: &Type) -> bool {
    !matches!(ty, Type::Option(_) | Type::Result(_))
}

/// Can a value of `ty` hold a record anywhere inside it?
pub(super) fn may_hold_record(ty: &Type) -> bool {
    match ty {
        Type::Record(_) => true,
        Type::List(list) => may_hold_record(&list.ty()),
        Type::Tuple(tuple) => tuple.types().any(|ty| may_hold_record(&ty)),
        Type::Option(option) => may_hold_record(&option.ty()),
        Type::Result(result) => {
            result.ok().is_some_and(|ty| may_hold_record(&ty)) || result.err().is_some_and(|ty| may_hold_record(&ty))
        }
        Type::Variant(variant) => variant.cases().any(|c| c.ty.as_ref().is_some_and(may_hold_record)),
        _ => false,
    }
}

fn push(path: &mut String, step: Step<'_>) {
    match step {
        Step::Field(name) => {
            path.push('.');
            path.push_str(name);
        }
        Step::Element(i) => {
            path.push('[');
            path.push_str(&i.to_string());
            path.push(']');
        }
    }
}

/// Does `node` name a record field that `val`, what WAVE converted it to,
/// lacks? (The conversion keeps exactly the fields of the record type.)
pub(super) fn names_unknown_field(node: &Node, val: &Val, src: &str) -> bool {
    match (node.ty(), val) {
        (NodeType::Record, Val::Record(fields)) => node.as_record(src).is_ok_and(|mut given| {
            given.any(|(name, node)| match fields.iter().find(|(field, _)| field == name) {
                Some((_, val)) => names_unknown_field(node, val, src),
                None => true,
            })
        }),
        (NodeType::List, Val::List(items)) => {
            node.as_list().is_ok_and(|nodes| nodes.zip(items).any(|(node, val)| names_unknown_field(node, val, src)))
        }
        (NodeType::Tuple, Val::Tuple(items)) => {
            node.as_tuple().is_ok_and(|nodes| nodes.zip(items).any(|(node, val)| names_unknown_field(node, val, src)))
        }
        (NodeType::OptionSome, Val::Option(Some(val))) => {
            matches!(node.as_option(), Ok(Some(node)) if names_unknown_field(node, val, src))
        }
        (NodeType::ResultOk | NodeType::ResultErr, Val::Result(Ok(Some(val)) | Err(Some(val)))) => {
            matches!(node.as_result(), Ok(Ok(Some(node)) | Err(Some(node))) if names_unknown_field(node, val, src))
        }
        (NodeType::VariantWithPayload, Val::Variant(_, Some(val))) => {
            matches!(node.as_variant(src), Ok((_, Some(node))) if names_unknown_field(node, val, src))
        }
        // A payload given without `some(...)` or `ok(...)` around it.
        (_, Val::Option(Some(val)) | Val::Result(Ok(Some(val)))) => names_unknown_field(node, val, src),
        _ => false,
    }
}

/// The first record field named in `node`, the value of argument `arg` of
/// type `ty`, that its record type does not have, said as a reason to
/// refuse the message; `None` if every field is known (or the value's
/// shape is wrong elsewhere, which conversion reports).
pub(super) fn unknown_field(arg: &str, node: &Node, ty: &Type, src: &str) -> Option<String> {
    if !may_hold_record(ty) {
        return None;
    }
    let mut path = arg.to_string();
    first_unknown_field(&mut path, node, ty, src)
}

fn first_unknown_field(path: &mut String, node: &Node, ty: &Type, src: &str) -> Option<String> {
    if !may_hold_record(ty) {
        return None;
    }
    if let (Type::Record(record), Ok(fields)) = (ty, node.as_record(src)) {
        for (name, _) in fields {
            if record.fields().all(|f| f.name != name) {
                let known: Vec<String> = record.fields().map(|f| format!("`{}`", f.name)).collect();
                let known = if known.is_empty() { "no fields".to_string() } else { known.join(", ") };
                return Some(format!("unknown field `{path}.{name}`; the record has {known}"));
            }
        }
    }
    for child in children(node, ty, src) {
        let len = path.len();
        if let Some(step) = child.step {
            push(path, step);
        }
        let found = first_unknown_field(path, child.node, &child.ty, src);
        path.truncate(len);
        if found.is_some() {
            return found;
        }
    }
    None
}

/// Where inside `node`, the value of argument `arg` of type `ty`, the
/// conversion `error` lies, and why: a missing field by its path and type,
/// or the innermost field or element around the error with the type
/// expected there and the text found, then what is wrong there.
pub(super) fn misfit(arg: &str, node: &Node, ty: &Type, src: &str, error: &ParserError) -> String {
    let at = error.span().start;
    let mut path = arg.to_string();
    // The innermost field or element around the error.
    let mut place: Option<(Step<'_>, &Node, Type)> = None;
    let (mut node, mut ty) = (node, ty.clone());
    while let Some(child) = children(node, &ty, src).into_iter().find(|c| c.node.span().contains(&at)) {
        if let Some(step) = child.step {
            push(&mut path, step);
            place = Some((step, child.node, child.ty.clone()));
        }
        (node, ty) = (child.node, child.ty);
    }
    if let Some(WasmValueError::MissingField(name)) = value_error(error) {
        let field = match &ty {
            Type::Record(record) => record.fields().find(|f| f.name == name).map(|f| f.ty),
            _ => None,
        };
        let field = field.map(|ty| format!(" ({})", TypeDisplay(&ty))).unwrap_or_default();
        return format!("missing field `{path}.{name}`{field}");
    }
    let reason = reason(error, node, &ty, src);
    let Some((step, node, ty)) = place else { return reason };
    let what = match step {
        Step::Field(_) => "field",
        Step::Element(_) => "element",
    };
    let text = src.get(node.span()).map(|t| truncate(t, QUOTED_BYTES)).unwrap_or_default();
    format!("{what} `{path}` expects {}, got `{text}`: {reason}", TypeDisplay(&ty))
}

/// What is wrong with `node`, of type `ty`, where WAVE's `error` lies,
/// without its byte offsets: the case or flag it does not know, else the
/// value error behind a failed conversion, else the kind of error and its
/// detail (`invalid value type`).
fn reason(error: &ParserError, node: &Node, ty: &Type, src: &str) -> String {
    match value_error(error) {
        Some(WasmValueError::UnknownCase(case)) => format!("unknown case `{case}`"),
        Some(WasmValueError::MissingPayload(case)) => format!("case `{case}` takes a payload"),
        Some(WasmValueError::UnexpectedPayload(case)) => format!("case `{case}` takes no payload"),
        // wasmtime's own check of what WAVE built, which names no culprit.
        Some(wrong @ WasmValueError::WrongValueType { .. }) => match unknown_label(node, ty, src) {
            Some((what, label)) => format!("unknown {what} `{label}`"),
            None => wrong.to_string(),
        },
        Some(other) => other.to_string(),
        None => match error.detail() {
            Some(detail) => format!("{} ({detail})", error.kind()),
            None => error.kind().to_string(),
        },
    }
}

/// The enum case or flag `node` names that `ty` lacks, if it is an enum
/// or flags.
fn unknown_label<'s>(node: &Node, ty: &Type, src: &'s str) -> Option<(&'static str, &'s str)> {
    match ty {
        Type::Enum(cases) => {
            let case = node.as_enum(src).ok()?;
            cases.names().all(|n| n != case).then_some(("case", case))
        }
        Type::Flags(flags) => node.as_flags(src).ok()?.find(|f| flags.names().all(|n| n != *f)).map(|f| ("flag", f)),
        _ => None,
    }
}

fn value_error(error: &ParserError) -> Option<&WasmValueError> {
    error.source()?.downcast_ref::<WasmValueError>()
}
