//! Ferry's sandbox: local stand-ins of WDT, Kingdee and Yonyou. For now it holds the deterministic data
//! set that the demo, the tests and the benchmarks share; the HTTP servers join it next.

pub mod data;
