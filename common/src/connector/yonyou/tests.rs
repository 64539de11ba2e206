//! The contract's Yonyou test vector (docs/apis.md §3).

use super::sign;

#[test]
fn token_signature_matches_the_contract_vector() {
    let (key, ts, secret) = (
        "41832a3d2df94989b500da6a22268747",
        "1568098531823",
        "testsecret",
    );
    assert_eq!(
        sign::raw_signature(key, ts, secret),
        "1TKdFM6bxn501/hAsnjN54BJ80g/cR31DgoPRbW3Btk="
    );
    assert_eq!(
        sign::signature(key, ts, secret),
        "1TKdFM6bxn501%2FhAsnjN54BJ80g%2FcR31DgoPRbW3Btk%3D"
    );
}

#[test]
fn save_answers_are_classified_as_the_contract_says() {
    use super::wire::{Answer, read_save};
    use crate::connector::FailureClass;
    use serde_json::json;
    let read = |body: serde_json::Value| read_save(&body.to_string(), Some(&body));
    assert!(matches!(
        read(json!({"code": 200, "data": {"id": "1"}})),
        Answer::Saved(_, false)
    ));
    assert!(matches!(
        read(json!({"code": "100004", "data": {"id": "1"}})),
        Answer::Saved(_, true)
    ));
    assert!(matches!(
        read(json!({"code": "10004", "data": {"id": "1"}})),
        Answer::Saved(_, true)
    ));
    assert!(matches!(
        read(json!({"code": "310036"})),
        Answer::TokenRejected(_)
    ));
    for code in [
        "202", "310504", "310032", "310039", "310042", "310046", "310043",
    ] {
        match read(json!({"code": code, "message": "m"})) {
            Answer::Refused(FailureClass::Retryable, c, _, Some(_)) => assert_eq!(c, code),
            other => panic!("{code}: {other:?}"),
        }
    }
    assert!(matches!(
        read(json!({"code": "310037"})),
        Answer::Refused(FailureClass::Credentials, ..)
    ));
    for code in ["310404", "310008", "310015", "310023", "999"] {
        assert!(
            matches!(
                read(json!({"code": code})),
                Answer::Refused(FailureClass::Permanent, ..)
            ),
            "{code}"
        );
    }
    assert!(matches!(
        read_save("非法token", None),
        Answer::TokenRejected(_)
    ));
    assert_eq!(read_save("<html>", None), Answer::Unreadable);
}
