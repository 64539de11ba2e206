//! What no public source settles (docs/apis.md §5), as settings: the sandbox plays
//! each plausible answer, and the tests run Ferry under each, so that Ferry is right whichever the
//! real services give.

use serde::{Deserialize, Serialize};

/// What a target does with existing lines a modify leaves out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeftOutLines {
    /// They stay as they were.
    Kept,
    /// They are deleted (as 金蝶云星空 does).
    #[default]
    Deleted,
}

/// How Kingdee refuses a create whose `billno` exists already.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DuplicateRefusal {
    /// A code of its own and the message seen on V2 saves: "组合值与其他表单重复".
    #[default]
    CombinedValue,
    /// Another code and another message.
    Other,
}

/// How Kingdee refuses an expired app-token on a business call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpiredToken {
    /// `errcode` 1030002006 with HTTP 200.
    #[default]
    #[serde(rename = "1030002006")]
    Code1030002006,
    /// HTTP 401.
    #[serde(rename = "http_401")]
    Http401,
    /// Another `errcode` of the gateway's family (1030002008 here) whose description names nothing
    /// a client could match on.
    OtherCode,
}

/// Yonyou's answer to a `resubmitCheckKey` repeated after its hour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RepeatCode {
    /// `100004`.
    #[default]
    #[serde(rename = "100004")]
    C100004,
    /// `10004`.
    #[serde(rename = "10004")]
    C10004,
}

impl RepeatCode {
    /// The code as Yonyou sends it.
    pub fn code(self) -> &'static str {
        match self {
            RepeatCode::C100004 => "100004",
            RepeatCode::C10004 => "10004",
        }
    }
}

/// The order of WDT's results within a window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultOrder {
    /// By the time the window filters on.
    #[default]
    ByModified,
    /// By the document's id.
    ById,
    /// In no meaningful order, but the same from one call to the next.
    Unordered,
}

/// What WDT sends as `total_count` on pages after page 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LaterTotal {
    /// The same total as page 0.
    Repeated,
    /// No `total_count` at all ("只有page_no = 0 时才返回").
    #[default]
    Omitted,
    /// `-1`.
    MinusOne,
}

/// One answer to each unknown (as JSON for `ferry sandbox --unknowns`, each field optional).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Unknowns {
    /// Kingdee: lines left out of a modify.
    pub kingdee_left_out: LeftOutLines,
    /// Yonyou: lines left out of an Update.
    pub yonyou_left_out: LeftOutLines,
    /// Kingdee: a duplicate `billno` create.
    pub kingdee_duplicate: DuplicateRefusal,
    /// Kingdee: an expired app-token on a business call.
    pub kingdee_expired_token: ExpiredToken,
    /// Yonyou: the repeat code after the idempotency hour.
    pub yonyou_repeat: RepeatCode,
    /// WDT: result order within a window.
    pub wdt_order: ResultOrder,
    /// WDT: `total_count` on pages after 0.
    pub wdt_later_total: LaterTotal,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknowns_read_from_json_with_defaults_and_refuse_a_misspelt_one() {
        let read: Unknowns = serde_json::from_str(
            r#"{"kingdee_left_out": "kept", "kingdee_expired_token": "http_401", "yonyou_repeat": "10004"}"#,
        )
        .unwrap();
        assert_eq!(read.kingdee_left_out, LeftOutLines::Kept);
        assert_eq!(read.kingdee_expired_token, ExpiredToken::Http401);
        assert_eq!(read.yonyou_repeat.code(), "10004");
        assert_eq!(read.wdt_later_total, LaterTotal::Omitted);
        assert!(serde_json::from_str::<Unknowns>(r#"{"kingdee_leftout": "kept"}"#).is_err());
    }
}
