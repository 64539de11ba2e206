//! The contract's Yonyou test vector (shared/specs/erp-apis.md §3).

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
