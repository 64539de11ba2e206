//! The console's words: Chinese by default (the people who run these schemes read it first),
//! English with `?lang=en`. Each page gets the whole table as `t`.

use std::collections::BTreeMap;

/// A page's language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// 中文.
    Zh,
    /// English.
    En,
}

impl Lang {
    /// The language a `lang` query value asks for (Chinese unless `en`).
    pub fn from_query(value: Option<&str>) -> Lang {
        match value {
            Some("en") => Lang::En,
            _ => Lang::Zh,
        }
    }

    /// The query value that keeps this language on the next page.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }
}

/// (key, 中文, English).
const LABELS: &[(&str, &str, &str)] = &[
    ("title", "Ferry 控制台", "Ferry console"),
    ("overview", "集成方案总览", "Integration schemes"),
    ("scheme", "集成方案", "Scheme"),
    ("files", "方案文件版本", "Files version"),
    ("cursor", "同步游标（北京时间）", "Cursor (Beijing time)"),
    ("lag", "延迟", "Lag"),
    ("never", "尚未运行", "never polled"),
    ("synced", "已同步", "synced"),
    ("in_progress", "处理中", "in progress"),
    ("retrying", "重试中", "retrying"),
    ("failed", "失败", "failed"),
    ("conflict", "冲突", "conflict"),
    ("queued", "队列中", "queued"),
    ("dead_letters", "死信", "dead letters"),
    (
        "pushed_per_hour",
        "每小时完成同步的单据（近 24 小时，按最后变更）",
        "Documents synced per hour (last 24 h, by last change)",
    ),
    (
        "rate_use",
        "目标接口限流占用（近 1 小时，至少）",
        "Target rate-limit use (last hour, at least)",
    ),
    ("limit", "限额", "limit"),
    ("per_minute", "次/分钟", "calls/min"),
    ("no_limit", "未设限流", "no limit set"),
    ("failures", "失败原因", "Failures by reason"),
    ("documents", "单据", "documents"),
    ("reason", "原因", "Reason"),
    ("key", "单据键", "Key"),
    ("number", "目标单号", "Target number"),
    ("target_id", "目标单据 ID", "Target id"),
    ("at", "时间（北京时间）", "At (Beijing time)"),
    ("state", "状态", "State"),
    ("attempts", "推送次数", "Push attempts"),
    ("last_error", "最近错误", "Last error"),
    ("version", "源单版本", "Source version"),
    ("history", "处理记录", "History"),
    ("sent", "实际发送的报文", "Body sent"),
    ("nothing_sent", "尚未发送", "nothing sent yet"),
    (
        "preview",
        "按当前映射预览源单",
        "The mapping's preview of the source now",
    ),
    (
        "not_in_source",
        "源系统中找不到该单据",
        "the source has no such document",
    ),
    ("find", "查找单据", "Find a document"),
    ("find_button", "查找", "Find"),
    ("actions", "操作", "Actions"),
    (
        "replay_failed",
        "重推全部失败单据",
        "Replay every failed document",
    ),
    (
        "replay_selected",
        "重推所选单据",
        "Replay the selected documents",
    ),
    ("redrive", "重投死信", "Redrive dead letters"),
    ("resync_window", "按时间段重新同步", "Resync a window"),
    ("resync_keys", "按单号重新同步", "Resync documents by key"),
    ("reconcile", "对账（一天）", "Reconcile a day"),
    ("from", "开始", "From"),
    ("to", "结束", "To"),
    ("day", "日期", "Day"),
    ("keys_hint", "单号，每行一个", "keys, one per line"),
    ("confirm_title", "请确认操作", "Confirm the action"),
    ("confirm", "确认执行", "Confirm"),
    ("cancel", "取消", "Cancel"),
    ("done", "操作完成", "Done"),
    ("audit", "操作日志", "Audit log"),
    ("no_failures", "没有失败的单据", "No failed documents"),
    ("no_audit", "暂无操作", "No actions yet"),
    ("back", "返回总览", "Back to the overview"),
    ("differences", "差异", "Differences"),
    (
        "no_differences",
        "无差异：源单均已同步且目标中存在",
        "No differences: every source document is synced and in the target",
    ),
    ("source", "源单", "source"),
    ("in_target", "目标中存在", "in target"),
    ("pending", "待同步", "pending"),
    ("queued_n", "已入队", "queued"),
    ("not_found", "源系统中没有", "not in the source"),
    ("pushed_n", "已推送", "pushed"),
    ("refused", "拒绝", "refused"),
    (
        "forbidden",
        "请求被拒绝：缺少或错误的防伪令牌",
        "Refused: missing or wrong anti-forgery token",
    ),
    ("token_needed", "需要访问令牌", "An access token is needed"),
    ("language", "English", "中文"),
    (
        "already_done",
        "该操作已执行过（或确认页已失效），请查看操作日志",
        "This action already ran (or its confirmation expired): see the audit log",
    ),
];

/// Every label in `lang`, for a template's `t`.
pub fn labels(lang: Lang) -> BTreeMap<&'static str, &'static str> {
    LABELS
        .iter()
        .map(|(key, zh, en)| (*key, if lang == Lang::Zh { *zh } else { *en }))
        .collect()
}

/// One label.
pub fn label(lang: Lang, key: &str) -> &'static str {
    LABELS
        .iter()
        .find(|(k, ..)| *k == key)
        .map(|(_, zh, en)| if lang == Lang::Zh { *zh } else { *en })
        .unwrap_or("?")
}
