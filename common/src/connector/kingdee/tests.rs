//! The contract's Kingdee test vectors (shared/specs/erp-apis.md §2.1).

use super::sign;

#[test]
fn app_signature_matches_the_contract_vector() {
    assert_eq!(
        sign::app_signature("abc", "abc123"),
        "ZDljMTI3NGIyNTE1MTRkYzlkNjc1MDNhYjUzMzgzNWMyY2M4YTdjMzdmNmM3YTVlNDkxMTkzNjdiOTFjNzUyZQ=="
    );
}

#[test]
fn request_signature_matches_the_contract_vector() {
    let query = vec![
        (
            "app_signature".to_owned(),
            "MzZlYTk0ODk4MWZlNjdiODNmNWU4YzViNzYxNGM5MTFlOGJkN2NjMzk0MTJkZGNhZGM0NzZhN2YxZDJmOTlkZA=="
                .to_owned(),
        ),
        ("app_key".to_owned(), "bVZgAZOv1".to_owned()),
    ];
    let text = sign::string_to_sign(
        "GET",
        "/jdyconnector/app_management/kingdee_auth_token",
        &query,
        "4427456950",
        "1670305063559",
    );
    assert_eq!(
        text,
        "GET\n%2Fjdyconnector%2Fapp_management%2Fkingdee_auth_token\napp_key=bVZgAZOv1&app_signature=MzZlYTk0ODk4MWZlNjdiODNmNWU4YzViNzYxNGM5MTFlOGJkN2NjMzk0MTJkZGNhZGM0NzZhN2YxZDJmOTlkZA%253D%253D\nx-api-nonce:4427456950\nx-api-timestamp:1670305063559\n"
    );
    assert_eq!(
        sign::signature("f2adcfef73369bfc4e1384677d38a0ff", &text),
        "OTFiZTliNDFiMjNkYTI3YzVhNzg4MDI4ZGU3MWY1ZTA5ZTk1NjVlNGM1YTI1ZjIxY2Y5YTA3ZGY2OGI1MGQ1MQ=="
    );
}

#[test]
fn a_body_request_without_query_signs_an_empty_line() {
    let text = sign::string_to_sign("post", "/jdy/sal/sal_order_save", &[], "1", "2");
    assert_eq!(
        text,
        "POST\n%2Fjdy%2Fsal%2Fsal_order_save\n\nx-api-nonce:1\nx-api-timestamp:2\n"
    );
}
