//! The contract's Kingdee test vectors (docs/apis.md §2.2).

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

#[test]
fn query_components_are_encoded_as_the_official_jar_does() {
    // The jar: URLEncoder, then the gateway encoder. A plain double encoding gives %2520, %252A, ~.
    assert_eq!(sign::jar_encode("a b"), "a%2Bb");
    assert_eq!(sign::jar_encode("x*y"), "x%2Ay");
    assert_eq!(sign::jar_encode("a~b"), "a%257Eb");
    assert_eq!(sign::jar_encode("a=b/c"), "a%253Db%252Fc");
    assert_eq!(sign::jar_encode("单"), "%25E5%258D%2595");
    let text = sign::string_to_sign(
        "GET",
        "/jdy/v2/scm/sal_order_detail",
        &[("number".to_owned(), "JY 1*2~3".to_owned())],
        "1",
        "2",
    );
    assert_eq!(
        text,
        "GET\n%2Fjdy%2Fv2%2Fscm%2Fsal_order_detail\nnumber=JY%2B1%2A2%257E3\nx-api-nonce:1\nx-api-timestamp:2\n"
    );
}

#[test]
fn the_sign_headers_are_named_in_the_official_jars_order() {
    assert_eq!(sign::SIGN_HEADERS, "X-Api-Nonce,X-Api-TimeStamp");
}
