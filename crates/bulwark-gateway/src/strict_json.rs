//! JSON read the way the gateway reads requests: a member name given twice in one object is
//! refused, not settled by "the last one wins".
//!
//! RFC 8259 leaves duplicate names undefined, and parsers disagree: `serde_json::Value` keeps
//! the last, many others keep the first. A request `{"amount": 1, "amount": 1000}` would then
//! be an order for 1 to whatever checked or logged it on the way (a client's risk layer, a
//! proxy, an audit of what was signed) and for 1,000 to the gateway. Refusing the request is
//! the only reading every party agrees on.
//!
//! Owns: [`parse`], and [`JsonError`], which tells a duplicate (with the name) from bad syntax.
//! Depth is bounded by `serde_json`'s recursion limit (128), as for `serde_json::from_slice`.

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::cell::RefCell;
use std::fmt;

/// Why a request body is not a JSON value the gateway reads.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    #[error("not JSON: {0}")]
    Syntax(String),
    #[error("member \"{0}\" appears twice in one object")]
    DuplicateMember(String),
}

/// Parses `bytes` as one JSON value (whitespace around it allowed), refusing any object with a
/// member name twice, at any depth.
pub fn parse(bytes: &[u8]) -> Result<Value, JsonError> {
    let duplicate = RefCell::new(None);
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed = StrictValue {
        duplicate: &duplicate,
    }
    .deserialize(&mut deserializer)
    .and_then(|value| deserializer.end().map(|()| value));
    match (parsed, duplicate.into_inner()) {
        (_, Some(name)) => Err(JsonError::DuplicateMember(name)),
        (Ok(value), None) => Ok(value),
        (Err(error), None) => Err(JsonError::Syntax(error.to_string())),
    }
}

/// Builds a `serde_json::Value`, stopping at the first duplicate member (recorded in
/// `duplicate`, since a deserializer's error carries only text).
#[derive(Clone, Copy)]
struct StrictValue<'a> {
    duplicate: &'a RefCell<Option<String>>,
}

impl<'de> DeserializeSeed<'de> for StrictValue<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue<'_> {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<Value, E> {
        // JSON text has no NaN or infinity; serde_json refuses numbers out of f64's range.
        Number::from_f64(value)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(name) = access.next_key::<String>()? {
            if map.contains_key(&name) {
                let error = A::Error::custom(format_args!("duplicate member {name:?}"));
                *self.duplicate.borrow_mut() = Some(name);
                return Err(error);
            }
            let value = access.next_value_seed(self)?;
            map.insert(name, value);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn reads_what_serde_json_reads_when_names_are_unique() {
        for text in [
            r#"{"jsonrpc":"2.0","id":7,"method":"private/buy","params":{"amount":1.5,"price":-3,"post_only":true,"label":null,"x":[1,{"a":"b"},[]]}}"#,
            "  [1, 2.5e3, -0, \"\\u00e9\", 18446744073709551615, -9223372036854775808]  ",
            "null",
            "{}",
        ] {
            let strict = parse(text.as_bytes()).unwrap();
            let lenient: Value = serde_json::from_str(text).unwrap();
            assert_eq!(strict, lenient, "{text}");
        }
    }

    #[test]
    fn a_name_twice_in_one_object_is_refused_at_any_depth() {
        for (text, name) in [
            (r#"{"amount":1,"amount":1000}"#, "amount"),
            (r#"{"params":{"price":1,"amount":2,"price":3}}"#, "price"),
            (r#"[{"ok":1},{"a":{"b":[{"c":1,"c":1}]}}]"#, "c"),
            // The same name after an escape is the same name.
            (r#"{"id":1,"\u0069d":2}"#, "id"),
        ] {
            assert_eq!(
                parse(text.as_bytes()),
                Err(JsonError::DuplicateMember(name.into())),
                "{text}"
            );
        }
        // One name in two different objects is no duplicate.
        assert_eq!(
            parse(br#"{"a":{"x":1},"b":{"x":2}}"#).unwrap(),
            json!({"a": {"x": 1}, "b": {"x": 2}})
        );
    }

    fn any_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<u64>().prop_map(|n| json!(n)),
            (-1e300..1e300_f64).prop_map(|x| json!(x)),
            ".{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(".{0,6}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Hostile text never panics the parser; what it accepts, serde_json reads the same,
        /// and what serde_json refuses it refuses as syntax.
        #[test]
        fn agrees_with_serde_json_or_names_a_duplicate(text in ".{0,120}") {
            let lenient = serde_json::from_str::<Value>(&text);
            match (parse(text.as_bytes()), lenient) {
                (Ok(strict), Ok(lenient)) => prop_assert_eq!(strict, lenient),
                (Err(JsonError::Syntax(_)), Err(_)) | (Err(JsonError::DuplicateMember(_)), Ok(_)) => {}
                (strict, lenient) => prop_assert!(false, "{text:?}: {strict:?} against {lenient:?}"),
            }
        }

        /// Every value serde_json writes (names unique by construction) reads back as
        /// serde_json reads it (its float parsing is not exact to the last bit, so the read,
        /// not the value written, is the reference).
        #[test]
        fn reads_back_what_serde_json_writes(value in any_value()) {
            let text = value.to_string();
            let lenient: Value = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(parse(text.as_bytes()), Ok(lenient));
        }
    }

    #[test]
    fn bad_syntax_and_trailing_bytes_are_syntax_errors() {
        for text in [
            "",
            "{",
            r#"{"a":1} x"#,
            r#"{"a":1,}"#,
            "NaN",
            "[1,]",
            "\u{0}",
        ] {
            assert!(
                matches!(parse(text.as_bytes()), Err(JsonError::Syntax(_))),
                "{text:?}"
            );
        }
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        assert!(matches!(parse(deep.as_bytes()), Err(JsonError::Syntax(_))));
    }
}
