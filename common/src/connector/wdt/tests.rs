//! The contract's WDT test vectors (docs/apis.md §1.1 and §1.2).

use super::sign;

fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn qimen_signature_matches_the_contract_vector() {
    let p = params(&[
        ("timestamp", "2024-01-01 12:00:00"),
        ("app_key", "12345678"),
        ("end_time", "2024-01-01 11:59:59"),
        ("format", "json"),
        ("method", "wdt.trade.query"),
        ("page_no", "0"),
        ("page_size", "100"),
        ("sid", "test2"),
        ("sign_method", "md5"),
        ("start_time", "2024-01-01 11:00:00"),
        ("target_app_key", "21363512"),
        ("v", "2.0"),
    ]);
    assert_eq!(
        sign::qimen(&p, "testsecret"),
        "3B80CD88F27E4F22BE7A6A19FDEEE677"
    );
    // Empty values and an existing sign do not take part.
    let mut more = p.clone();
    more.push(("shop_no".into(), String::new()));
    more.push(("sign".into(), "XYZ".into()));
    assert_eq!(
        sign::qimen(&more, "testsecret"),
        sign::qimen(&p, "testsecret")
    );
}

#[test]
fn openapi2_signature_matches_the_official_vector() {
    let p = params(&[
        ("appkey", "test2-xx"),
        ("page_no", "0"),
        ("end_time", "2016-08-01 13:00:00"),
        ("start_time", "2016-08-01 12:00:00"),
        ("page_size", "40"),
        ("sid", "test2"),
        ("timestamp", "1470042310"),
    ]);
    assert_eq!(
        sign::openapi2_string(&p),
        "06-appkey:0008-test2-xx;08-end_time:0019-2016-08-01 13:00:00;07-page_no:0001-0;09-page_size:0002-40;03-sid:0005-test2;10-start_time:0019-2016-08-01 12:00:00;09-timestamp:0010-1470042310"
    );
    assert_eq!(
        sign::openapi2(&p, "12345"),
        "ad4e6fe037ea6e3ba4768317be9d1309"
    );
}

#[test]
fn openapi2_lengths_count_characters_not_bytes() {
    let p = params(&[("shop_no", "天猫旗舰店")]);
    assert_eq!(sign::openapi2_string(&p), "07-shop_no:0005-天猫旗舰店");
}
