//! JSON-RPC 2.0 envelopes, to the letter of the specification
//! (<https://www.jsonrpc.org/specification>).
//!
//! The browser client speaks JSON-RPC over HTTP and WebSocket. This module
//! only parses and builds envelopes: it decides whether a body is a valid
//! call and what error to answer if not, and leaves method dispatch to the
//! server. Parsing goes through [`serde_json::Value`] and then checks every
//! member by hand, because the specification distinguishes cases (an invalid
//! id versus invalid params, an invalid notification) that a derived
//! deserializer would blur into one error. Size and depth limits are the
//! caller's job (serde_json itself refuses nesting deeper than 128).

use serde::de::{self, DeserializeOwned};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// Invalid JSON was received.
pub const PARSE_ERROR: i64 = -32700;
/// The JSON sent is not a valid Request object.
pub const INVALID_REQUEST: i64 = -32600;
/// The method does not exist or is not available.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// Invalid method parameters.
pub const INVALID_PARAMS: i64 = -32602;
/// Internal JSON-RPC error.
pub const INTERNAL_ERROR: i64 = -32603;

/// The protocol version every envelope must carry.
const VERSION: &str = "2.0";

/// The `error` member of a response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorObject {
    pub code: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl ErrorObject {
    /// Any error, for application-defined codes.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        ErrorObject {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// Attaches structured detail the client can act on.
    pub fn with_data(self, data: Value) -> Self {
        ErrorObject {
            data: Some(data),
            ..self
        }
    }

    /// The body is not JSON; `detail` says where and why.
    pub fn parse_error(detail: &str) -> Self {
        Self::new(PARSE_ERROR, with_detail("Parse error", detail))
    }

    /// The JSON is not a valid request; `detail` names the offending member.
    pub fn invalid_request(detail: &str) -> Self {
        Self::new(INVALID_REQUEST, with_detail("Invalid Request", detail))
    }

    /// No such method; the name is echoed so the client can see its typo.
    pub fn method_not_found(method: &str) -> Self {
        Self::new(METHOD_NOT_FOUND, with_detail("Method not found", method))
    }

    /// The params do not fit the method; `detail` says which and how.
    pub fn invalid_params(detail: &str) -> Self {
        Self::new(INVALID_PARAMS, with_detail("Invalid params", detail))
    }

    /// A server fault. It says nothing more on purpose: internals stay in the
    /// server's log, not in the client's hands.
    pub fn internal() -> Self {
        Self::new(INTERNAL_ERROR, "Internal error")
    }
}

/// `"Title: detail"`, or just the title when there is no detail.
fn with_detail(title: &str, detail: &str) -> String {
    if detail.is_empty() {
        title.to_owned()
    } else {
        format!("{title}: {detail}")
    }
}

/// A request. `id: None` means a notification (no "id" member at all);
/// `Some(Value::Null)` is a request whose id is null and which gets a reply.
///
/// An id, when present, is a string, a number or null; the parser guarantees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub id: Option<Value>,
    pub method: String,
    /// An object or an array when present; the parser guarantees it.
    pub params: Option<Value>,
}

impl Request {
    /// A notification expects no response, not even an error.
    pub fn is_notification(&self) -> bool {
        self.id.is_none()
    }

    /// Deserialize params into T; absent params deserialize from an empty
    /// object `{}`; errors become INVALID_PARAMS with serde's message.
    ///
    /// Absent params read as `{}` so that a method whose parameters are all
    /// optional accepts a call that leaves them out.
    pub fn params<T: DeserializeOwned>(&self) -> Result<T, ErrorObject> {
        let result = match &self.params {
            Some(params) => T::deserialize(params),
            None => T::deserialize(&Value::Object(Map::new())),
        };
        result.map_err(|e| ErrorObject::invalid_params(&e.to_string()))
    }
}

/// Serialized as `{"jsonrpc":"2.0","result":...,"id":...}` or
/// `{"jsonrpc":"2.0","error":{...},"id":...}`; the id echoed exactly as sent
/// (string, number, or null).
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub id: Value,
    pub outcome: Result<Value, ErrorObject>,
}

impl Response {
    /// The reply to a request that worked.
    pub fn success(id: Value, result: Value) -> Self {
        Response {
            id,
            outcome: Ok(result),
        }
    }

    /// The reply to a request that failed.
    pub fn error(id: Value, e: ErrorObject) -> Self {
        Response {
            id,
            outcome: Err(e),
        }
    }
}

impl Serialize for Response {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("jsonrpc", VERSION)?;
        match &self.outcome {
            Ok(result) => map.serialize_entry("result", result)?,
            Err(error) => map.serialize_entry("error", error)?,
        }
        map.serialize_entry("id", &self.id)?;
        map.end()
    }
}

/// For test clients: as strict as the specification is about responses. It
/// needs `"jsonrpc": "2.0"`, an `id` that is a string, number or null, and
/// exactly one of `result` and `error`.
impl<'de> Deserialize<'de> for Response {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let Value::Object(mut object) = value else {
            return Err(de::Error::custom("a JSON-RPC response must be an object"));
        };
        if object.get("jsonrpc") != Some(&Value::String(VERSION.to_owned())) {
            return Err(de::Error::custom(
                r#"a JSON-RPC response must have "jsonrpc": "2.0""#,
            ));
        }
        let id = match object.remove("id") {
            Some(id @ (Value::String(_) | Value::Number(_) | Value::Null)) => id,
            Some(_) => {
                return Err(de::Error::custom(
                    "a JSON-RPC response id must be a string, number or null",
                ));
            }
            None => {
                return Err(de::Error::custom(
                    r#"a JSON-RPC response must have an "id""#,
                ));
            }
        };
        let outcome = match (object.remove("result"), object.remove("error")) {
            (Some(result), None) => Ok(result),
            (None, Some(error)) => Err(ErrorObject::deserialize(error).map_err(de::Error::custom)?),
            (Some(_), Some(_)) => {
                return Err(de::Error::custom(
                    r#"a JSON-RPC response must not have both "result" and "error""#,
                ));
            }
            (None, None) => {
                return Err(de::Error::custom(
                    r#"a JSON-RPC response must have "result" or "error""#,
                ));
            }
        };
        Ok(Response { id, outcome })
    }
}

/// One parsed element of a call: a valid request, or the error response to
/// send for an invalid one (id null unless a valid id could be read).
pub type Parsed = Result<Request, Response>;

/// A request body: one element, or a batch of them answered together.
#[derive(Debug)]
pub enum Call {
    Single(Parsed),
    Batch(Vec<Parsed>),
}

/// Parse a request body. Invalid JSON -> Err(Response with PARSE_ERROR, id
/// null, message including serde's message). Empty batch `[]` -> Err(single
/// INVALID_REQUEST response, id null).
///
/// The `Err` cases are the ones the specification answers with one response
/// object in place of the whole call; everything else is judged element by
/// element.
pub fn parse_call(body: &[u8]) -> Result<Call, Response> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Response::error(Value::Null, ErrorObject::parse_error(&e.to_string())))?;
    match value {
        Value::Array(elements) if elements.is_empty() => Err(Response::error(
            Value::Null,
            ErrorObject::invalid_request("an empty batch"),
        )),
        Value::Array(elements) => Ok(Call::Batch(
            elements.into_iter().map(parse_element).collect(),
        )),
        single => Ok(Call::Single(parse_element(single))),
    }
}

/// Validates one request object member by member. The id is read first so
/// that later errors can echo it; an invalid id is never echoed.
fn parse_element(value: Value) -> Parsed {
    let Value::Object(mut object) = value else {
        return Err(invalid(Value::Null, "a request must be a JSON object"));
    };
    let id = match object.remove("id") {
        None => None,
        Some(id @ (Value::String(_) | Value::Number(_) | Value::Null)) => Some(id),
        Some(_) => {
            return Err(invalid(
                Value::Null,
                r#""id" must be a string, a number or null"#,
            ));
        }
    };
    let reply_id = id.clone().unwrap_or(Value::Null);
    match object.get("jsonrpc") {
        Some(Value::String(version)) if version == VERSION => {}
        _ => return Err(invalid(reply_id, r#""jsonrpc" must be exactly "2.0""#)),
    }
    let method = match object.remove("method") {
        Some(Value::String(method)) => method,
        _ => return Err(invalid(reply_id, r#""method" must be a string"#)),
    };
    let params = match object.remove("params") {
        None => None,
        Some(params @ (Value::Object(_) | Value::Array(_))) => Some(params),
        Some(_) => {
            return Err(invalid(
                reply_id,
                r#""params" must be an object or an array"#,
            ));
        }
    };
    Ok(Request { id, method, params })
}

fn invalid(id: Value, detail: &str) -> Response {
    Response::error(id, ErrorObject::invalid_request(detail))
}

/// Builds an outgoing notification (server to client):
/// `{"jsonrpc":"2.0","method":..,"params":..}`.
///
/// The specification allows only an object or an array as params, so
/// `Value::Null` leaves the member out; other scalars are sent as given and are
/// the caller's mistake.
pub fn notification(method: &str, params: Value) -> Value {
    let mut object = Map::with_capacity(3);
    object.insert("jsonrpc".to_owned(), Value::String(VERSION.to_owned()));
    object.insert("method".to_owned(), Value::String(method.to_owned()));
    if !params.is_null() {
        object.insert("params".to_owned(), params);
    }
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn single(body: &str) -> Parsed {
        match parse_call(body.as_bytes()) {
            Ok(Call::Single(parsed)) => parsed,
            other => panic!("expected a single call, got {other:?}"),
        }
    }

    fn batch(body: &str) -> Vec<Parsed> {
        match parse_call(body.as_bytes()) {
            Ok(Call::Batch(parsed)) => parsed,
            other => panic!("expected a batch, got {other:?}"),
        }
    }

    fn request(body: &str) -> Request {
        single(body).expect("valid request")
    }

    fn error_code(parsed: &Parsed) -> (i64, Value) {
        match parsed {
            Err(Response {
                id,
                outcome: Err(e),
            }) => (e.code, id.clone()),
            other => panic!("expected an error response, got {other:?}"),
        }
    }

    fn to_json(response: &Response) -> Value {
        serde_json::to_value(response).expect("serialize")
    }

    // The examples of the specification's "Examples" section, in order.

    #[test]
    fn spec_positional_parameters() {
        let r = request(r#"{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}"#);
        assert_eq!(r.method, "subtract");
        assert_eq!(r.params, Some(json!([42, 23])));
        assert_eq!(r.id, Some(json!(1)));
        let (a, b): (i64, i64) = r.params().expect("params");
        let reply = Response::success(r.id.clone().expect("id"), json!(a - b));
        assert_eq!(
            to_json(&reply),
            json!({"jsonrpc": "2.0", "result": 19, "id": 1})
        );
        assert_eq!(
            serde_json::to_string(&reply).expect("serialize"),
            r#"{"jsonrpc":"2.0","result":19,"id":1}"#
        );

        let r = request(r#"{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}"#);
        let (a, b): (i64, i64) = r.params().expect("params");
        assert_eq!(
            to_json(&Response::success(json!(2), json!(a - b))),
            json!({"jsonrpc": "2.0", "result": -19, "id": 2})
        );
    }

    #[test]
    fn spec_named_parameters() {
        #[derive(Deserialize)]
        struct Subtract {
            subtrahend: i64,
            minuend: i64,
        }
        let r = request(
            r#"{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}"#,
        );
        let p: Subtract = r.params().expect("params");
        assert_eq!(p.minuend - p.subtrahend, 19);
        let r = request(
            r#"{"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 42, "subtrahend": 23}, "id": 4}"#,
        );
        let p: Subtract = r.params().expect("params");
        assert_eq!(p.minuend - p.subtrahend, 19);
        assert_eq!(r.id, Some(json!(4)));
    }

    #[test]
    fn spec_notifications() {
        let r = request(r#"{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}"#);
        assert!(r.is_notification());
        assert_eq!(r.id, None);
        let r = request(r#"{"jsonrpc": "2.0", "method": "foobar"}"#);
        assert!(r.is_notification());
        assert_eq!(r.params, None);
    }

    #[test]
    fn spec_invalid_json() {
        let err = parse_call(br#"{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]"#)
            .expect_err("parse error");
        let json = to_json(&err);
        assert_eq!(json["jsonrpc"], "2.0");
        assert_eq!(json["error"]["code"], PARSE_ERROR);
        assert_eq!(json["id"], Value::Null);
        let message = json["error"]["message"].as_str().expect("message");
        assert!(message.starts_with("Parse error: "), "{message}");
        assert!(
            message.contains("line 1"),
            "serde's message with its position: {message}"
        );
    }

    #[test]
    fn spec_invalid_request_object() {
        let parsed = single(r#"{"jsonrpc": "2.0", "method": 1, "params": "bar"}"#);
        assert_eq!(error_code(&parsed), (INVALID_REQUEST, Value::Null));
        let Err(response) = parsed else {
            unreachable!()
        };
        let json = to_json(&response);
        assert_eq!(json["error"]["code"], -32600);
        assert!(
            json["error"]["message"]
                .as_str()
                .expect("message")
                .starts_with("Invalid Request")
        );
        assert_eq!(
            json.get("id"),
            Some(&Value::Null),
            "id member present and null"
        );
    }

    #[test]
    fn spec_batch_invalid_json() {
        let err = parse_call(
            br#"[
  {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
  {"jsonrpc": "2.0", "method"
]"#,
        )
        .expect_err("parse error");
        assert_eq!(err.id, Value::Null);
        assert_eq!(err.outcome.expect_err("error").code, PARSE_ERROR);
    }

    #[test]
    fn spec_empty_array() {
        let err = parse_call(b"[]").expect_err("invalid request");
        assert_eq!(
            to_json(&err),
            json!({"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request: an empty batch"}, "id": null})
        );
    }

    #[test]
    fn spec_invalid_batch_but_not_empty() {
        let parsed = batch("[1]");
        assert_eq!(parsed.len(), 1);
        assert_eq!(error_code(&parsed[0]), (INVALID_REQUEST, Value::Null));
    }

    #[test]
    fn spec_invalid_batch() {
        let parsed = batch("[1,2,3]");
        assert_eq!(parsed.len(), 3);
        for p in &parsed {
            assert_eq!(error_code(p), (INVALID_REQUEST, Value::Null));
        }
    }

    #[test]
    fn spec_mixed_batch() {
        let parsed = batch(
            r#"[
        {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
        {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
        {"foo": "boo"},
        {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
        {"jsonrpc": "2.0", "method": "get_data", "id": "9"}
    ]"#,
        );
        assert_eq!(parsed.len(), 6);
        let r = parsed[0].as_ref().expect("sum");
        assert_eq!((r.method.as_str(), r.id.clone()), ("sum", Some(json!("1"))));
        assert!(parsed[1].as_ref().expect("notify_hello").is_notification());
        assert_eq!(parsed[2].as_ref().expect("subtract").id, Some(json!("2")));
        assert_eq!(error_code(&parsed[3]), (INVALID_REQUEST, Value::Null));
        let r = parsed[4].as_ref().expect("foo.get");
        assert_eq!(r.params, Some(json!({"name": "myself"})));
        let r = parsed[5].as_ref().expect("get_data");
        assert_eq!((r.params.clone(), r.id.clone()), (None, Some(json!("9"))));
        // The method-not-found reply of the spec, built by dispatch.
        let reply = Response::error(
            json!("5"),
            ErrorObject::new(METHOD_NOT_FOUND, "Method not found"),
        );
        assert_eq!(
            to_json(&reply),
            json!({"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "5"})
        );
    }

    #[test]
    fn spec_all_notifications_batch() {
        let parsed = batch(
            r#"[{"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]}, {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}]"#,
        );
        assert!(
            parsed
                .iter()
                .all(|p| p.as_ref().is_ok_and(Request::is_notification))
        );
    }

    #[test]
    fn wrong_version_echoes_valid_id() {
        assert_eq!(
            error_code(&single(r#"{"jsonrpc":"1.0","method":"x","id":7}"#)),
            (INVALID_REQUEST, json!(7))
        );
        assert_eq!(
            error_code(&single(r#"{"jsonrpc":2.0,"method":"x","id":"a"}"#)),
            (INVALID_REQUEST, json!("a"))
        );
        assert_eq!(
            error_code(&single(r#"{"method":"x","id":1}"#)),
            (INVALID_REQUEST, json!(1))
        );
        // An invalid notification still gets an error, with id null.
        assert_eq!(
            error_code(&single(r#"{"jsonrpc":"1.0","method":"x"}"#)),
            (INVALID_REQUEST, Value::Null)
        );
    }

    #[test]
    fn bad_ids_are_never_echoed() {
        for id in [r#"{"a":1}"#, "[1]", "true"] {
            let body = format!(r#"{{"jsonrpc":"2.0","method":"x","id":{id}}}"#);
            assert_eq!(
                error_code(&single(&body)),
                (INVALID_REQUEST, Value::Null),
                "{body}"
            );
        }
    }

    #[test]
    fn bad_params_echo_the_id() {
        for params in ["\"bar\"", "1", "null", "true"] {
            let body = format!(r#"{{"jsonrpc":"2.0","method":"x","params":{params},"id":"q"}}"#);
            assert_eq!(
                error_code(&single(&body)),
                (INVALID_REQUEST, json!("q")),
                "{body}"
            );
        }
    }

    #[test]
    fn ids_are_kept_exactly() {
        for id in [
            json!(1),
            json!(-5),
            json!(1.5),
            json!("abc"),
            json!(""),
            Value::Null,
            json!(18446744073709551615u64),
        ] {
            let body = json!({"jsonrpc": "2.0", "method": "m", "id": id}).to_string();
            let r = request(&body);
            assert_eq!(r.id, Some(id.clone()));
            assert!(!r.is_notification());
            let reply = serde_json::to_string(&Response::success(id.clone(), json!(true)))
                .expect("serialize");
            assert!(reply.ends_with(&format!(r#","id":{id}}}"#)), "{reply}");
        }
    }

    #[test]
    fn extra_members_and_rpc_methods_are_accepted() {
        let r = request(r#"{"jsonrpc":"2.0","method":"rpc.discover","id":1,"extra":[1]}"#);
        assert_eq!(r.method, "rpc.discover");
    }

    #[test]
    fn non_object_single_call() {
        for body in ["1", "\"x\"", "null", "true"] {
            assert_eq!(
                error_code(&single(body)),
                (INVALID_REQUEST, Value::Null),
                "{body}"
            );
        }
    }

    #[test]
    fn truncated_and_empty_bodies_are_parse_errors() {
        for body in [
            &br#"{"jsonrpc":"2.0","method":"x","#[..],
            b"",
            b"   ",
            b"[",
            b"\xff\xfe",
            b"{} {}",
        ] {
            let err = parse_call(body).expect_err("parse error");
            assert_eq!(err.id, Value::Null);
            assert_eq!(err.outcome.expect_err("error").code, PARSE_ERROR);
        }
    }

    #[test]
    fn params_helper() {
        #[derive(Debug, Deserialize, PartialEq, Default)]
        #[serde(default)]
        struct Options {
            verbose: bool,
        }
        let r = request(r#"{"jsonrpc":"2.0","method":"m"}"#);
        assert_eq!(
            r.params::<Options>(),
            Ok(Options::default()),
            "absent params read as {{}}"
        );
        let r = request(r#"{"jsonrpc":"2.0","method":"m","params":{"verbose":"yes"}}"#);
        let err = r.params::<Options>().expect_err("wrong type");
        assert_eq!(err.code, INVALID_PARAMS);
        assert!(
            err.message.starts_with("Invalid params: invalid type"),
            "{}",
            err.message
        );
        let err = r.params::<(i64,)>().expect_err("wrong shape");
        assert_eq!(err.code, INVALID_PARAMS);
    }

    #[test]
    fn error_object_helpers() {
        assert_eq!(
            ErrorObject::internal(),
            ErrorObject {
                code: INTERNAL_ERROR,
                message: "Internal error".into(),
                data: None
            }
        );
        assert_eq!(
            ErrorObject::method_not_found("nope").message,
            "Method not found: nope"
        );
        assert_eq!(ErrorObject::invalid_params("").message, "Invalid params");
        let e = ErrorObject::new(-32000, "Conference full").with_data(json!({"limit": 16}));
        assert_eq!(
            serde_json::to_value(&e).expect("serialize"),
            json!({"code": -32000, "message": "Conference full", "data": {"limit": 16}})
        );
        assert!(
            !serde_json::to_string(&ErrorObject::internal())
                .expect("serialize")
                .contains("data")
        );
    }

    #[test]
    fn responses_round_trip_and_bad_ones_are_refused() {
        for r in [
            Response::success(json!(1), json!({"a": [1, 2]})),
            Response::success(Value::Null, Value::Null),
            Response::error(
                json!("x"),
                ErrorObject::invalid_params("p").with_data(json!(3)),
            ),
        ] {
            let text = serde_json::to_string(&r).expect("serialize");
            assert_eq!(
                serde_json::from_str::<Response>(&text).expect("deserialize"),
                r
            );
        }
        for bad in [
            r#"{"result":1,"id":1}"#,
            r#"{"jsonrpc":"1.0","result":1,"id":1}"#,
            r#"{"jsonrpc":"2.0","result":1}"#,
            r#"{"jsonrpc":"2.0","result":1,"error":{"code":1,"message":"m"},"id":1}"#,
            r#"{"jsonrpc":"2.0","id":1}"#,
            r#"{"jsonrpc":"2.0","result":1,"id":{}}"#,
            r#"{"jsonrpc":"2.0","error":{"code":"x","message":"m"},"id":1}"#,
            r#"[]"#,
        ] {
            assert!(serde_json::from_str::<Response>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn notifications_are_built_to_the_spec() {
        assert_eq!(
            notification("conference.joined", json!({"user": "u1"})),
            json!({"jsonrpc": "2.0", "method": "conference.joined", "params": {"user": "u1"}})
        );
        assert_eq!(
            notification("ping", Value::Null),
            json!({"jsonrpc": "2.0", "method": "ping"})
        );
        let text = notification("n", json!([1])).to_string();
        let r = request(&text);
        assert!(r.is_notification());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_call(&bytes);
        }

        #[test]
        fn json_shaped_text_never_panics(s in r#"[\[\]{}",:0-9a-z .\-]{0,64}"#) {
            let _ = parse_call(s.as_bytes());
        }

        #[test]
        fn every_batch_element_gets_judged(n in 1usize..20) {
            let body = format!("[{}]", vec!["1"; n].join(","));
            prop_assert_eq!(batch(&body).len(), n);
        }
    }
}
