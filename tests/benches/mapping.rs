//! Mapping throughput of scheme 1 (WDT orders → Kingdee) on one core, side by side with jq running the
//! equivalent mapping (benches/wdt-trades-to-kingdee.jq) over the same corpus in the same run.
//!
//! `cargo bench -p ferry-tests --bench mapping` maps 100,000 generated orders, three rounds each,
//! alternating Ferry and jq, and prints the medians and their ratio. Under `cargo test --all-targets`
//! (no `--bench` argument) it runs a small smoke round instead, and first checks that jq's bodies
//! equal Ferry's field for field (numbers compared by value: jq has only floats).
//! Options after `--`: `--orders N`, `--rounds N`.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferry_common::Scheme;
use ferry_sandbox::data::Generator;

const SEED: u64 = 42;

// The same allocator as the `ferry` binary: mapping allocates many small values.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Writes (once) the corpus of `orders` generated orders, one JSON document per line.
fn corpus(orders: u64) -> std::io::Result<(PathBuf, u64)> {
    let dir = workspace_dir().join("target/ferry-bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("wdt-orders-{orders}-seed{SEED}.jsonl"));
    if !path.exists() {
        let partial = path.with_extension("partial");
        let mut out = BufWriter::new(File::create(&partial)?);
        let generator = Generator::new(SEED);
        for i in 0..orders {
            serde_json::to_writer(&mut out, &generator.order(i))?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        std::fs::rename(&partial, &path)?;
    }
    let bytes = std::fs::metadata(&path)?.len();
    Ok((path, bytes))
}

/// Maps every line of the corpus and writes the bodies to /dev/null, as `ferry preview` would.
fn run_ferry(scheme: &Scheme, corpus: &Path) -> std::io::Result<(Duration, u64)> {
    let start = Instant::now();
    let input = BufReader::with_capacity(1 << 20, File::open(corpus)?);
    let mut out = BufWriter::with_capacity(1 << 20, File::create("/dev/null")?);
    let mut mapped = 0;
    for line in input.lines() {
        let line = line?;
        let doc = scheme.mapper.parse(&line).expect("corpus lines are JSON");
        let body = scheme.mapper.map(&doc).expect("generated orders map");
        serde_json::to_writer(&mut out, &body)?;
        out.write_all(b"\n")?;
        mapped += 1;
    }
    out.flush()?;
    Ok((start.elapsed(), mapped))
}

/// Time spent per order in each stage (parse, map, serialize), over the whole corpus.
fn breakdown(scheme: &Scheme, corpus: &Path) -> std::io::Result<[f64; 3]> {
    let text = std::fs::read_to_string(corpus)?;
    let lines: Vec<&str> = text.lines().collect();
    let start = Instant::now();
    let docs: Vec<_> = lines
        .iter()
        .map(|l| scheme.mapper.parse(l).expect("JSON"))
        .collect();
    let parse = start.elapsed();
    let start = Instant::now();
    let bodies: Vec<_> = docs
        .iter()
        .map(|d| scheme.mapper.map(d).expect("maps"))
        .collect();
    let map = start.elapsed();
    let start = Instant::now();
    let mut out = Vec::with_capacity(text.len());
    for body in &bodies {
        serde_json::to_writer(&mut out, body)?;
    }
    let serialize = start.elapsed();
    let per = |d: Duration| d.as_secs_f64() * 1e6 / lines.len() as f64;
    Ok([per(parse), per(map), per(serialize)])
}

/// Runs jq over the corpus; returns the time and the number of bodies it printed.
fn run_jq(corpus: &Path) -> std::io::Result<(Duration, u64)> {
    let program = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/wdt-trades-to-kingdee.jq");
    let start = Instant::now();
    let mut child = Command::new("jq")
        .arg("-c")
        .arg("-f")
        .arg(&program)
        .arg(corpus)
        .stdout(Stdio::piped())
        .spawn()?;
    let mut lines = 0;
    let mut reader = BufReader::with_capacity(1 << 20, child.stdout.take().expect("piped"));
    let mut buffer = Vec::new();
    while reader.read_until(b'\n', &mut buffer)? > 0 {
        lines += 1;
        buffer.clear();
    }
    let status = child.wait()?;
    assert!(status.success(), "jq failed: {status}");
    Ok((start.elapsed(), lines))
}

/// The bodies Ferry and jq produce for the corpus must agree field for field.
fn check_equivalent(scheme: &Scheme, corpus: &Path) -> std::io::Result<u64> {
    let program = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/wdt-trades-to-kingdee.jq");
    let output = Command::new("jq")
        .arg("-c")
        .arg("-f")
        .arg(&program)
        .arg(corpus)
        .output()?;
    assert!(
        output.status.success(),
        "jq failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let jq_bodies = String::from_utf8(output.stdout).expect("jq prints UTF-8");
    let text = std::fs::read_to_string(corpus)?;
    // Decimal strings and numbers compare by value.
    fn normalize(value: &serde_json::Value) -> serde_json::Value {
        match value {
            serde_json::Value::String(s) => match s.parse::<f64>() {
                Ok(n) => serde_json::json!(n),
                Err(_) => value.clone(),
            },
            serde_json::Value::Array(items) => items.iter().map(normalize).collect(),
            serde_json::Value::Object(map) => {
                map.iter().map(|(k, v)| (k.clone(), normalize(v))).collect()
            }
            other => other.clone(),
        }
    }
    let mut compared = 0;
    for (index, (line, jq_line)) in text.lines().zip(jq_bodies.lines()).enumerate() {
        let ours = scheme
            .mapper
            .map(&scheme.mapper.parse(line).expect("JSON"))
            .expect("maps");
        let theirs: serde_json::Value = serde_json::from_str(jq_line).expect("jq prints JSON");
        assert_eq!(
            normalize(&ours),
            normalize(&theirs),
            "order {index}: ferry and jq disagree"
        );
        compared += 1;
    }
    assert_eq!(
        compared,
        text.lines().count() as u64,
        "jq printed a body per order"
    );
    Ok(compared)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// A file beside the benchmark's corpus (the system's temporary folder).
fn path_beside_corpus(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("ferry-bench-{}-{name}", std::process::id()))
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let bench = args.iter().any(|a| a == "--bench");
    let option = |name: &str, default: u64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let orders = option("--orders", if bench { 100_000 } else { 300 });
    let rounds = option("--rounds", if bench { 3 } else { 1 });

    let scheme_file = workspace_dir().join("schemes/wdt-trades-to-kingdee.yaml");
    let scheme_text = std::fs::read_to_string(&scheme_file)?;
    let scheme = Scheme::load_str(
        &scheme_file.display().to_string(),
        &scheme_text,
        &ferry_sandbox::demo_variable,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // The same scheme with a 100,000-entry material map (a CSV, as a consultant keeps one): every
    // real spec_no maps to itself, so the bodies are the same and only the map's size differs.
    let big_map = path_beside_corpus("materials-100k.csv");
    {
        let mut csv = String::from("key,value\n");
        for goods in 1001..=1012 {
            for spec in 1..=3 {
                csv.push_str(&format!("G{goods}-{spec:02},G{goods}-{spec:02}\n"));
            }
        }
        for i in 0..(100_000 - 36) {
            csv.push_str(&format!("SKU-{i:06},MAT-{i:06}\n"));
        }
        std::fs::write(&big_map, csv)?;
    }
    let big_text = scheme_text.replacen(
        "  material:\n",
        &format!("  material:\n    entries_file: \"{}\"\n", big_map.display()),
        1,
    );
    let big_scheme = Scheme::load_str(
        &scheme_file.display().to_string(),
        &big_text,
        &ferry_sandbox::demo_variable,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (path, bytes) = corpus(orders)?;
    let lines: u64 = {
        let mut total = 0;
        let generator = Generator::new(SEED);
        for i in 0..orders.min(10_000) {
            total += generator.order(i)["goods_list"]
                .as_array()
                .map_or(0, |l| l.len() as u64);
        }
        total
    };
    println!(
        "corpus: {orders} WDT orders, {:.2} KB each on average, {:.1} lines each (first 10,000), {}",
        bytes as f64 / orders as f64 / 1000.0,
        lines as f64 / orders.min(10_000) as f64,
        path.display()
    );

    if !bench {
        let compared = check_equivalent(&scheme, &path)?;
        println!("ferry and jq agree on all {compared} bodies");
        println!("(a smoke round in a test build: the figures below are not the benchmark)");
    }

    let mut ferry_rates = Vec::new();
    let mut jq_rates = Vec::new();
    let mut big_rates = Vec::new();
    // One round of ferry on `scheme`: its rate, printed with `what`.
    let ferry_round = |round: u64, scheme: &Scheme, what: &str| -> std::io::Result<f64> {
        let (elapsed, mapped) = run_ferry(scheme, &path)?;
        assert_eq!(mapped, orders, "ferry mapped every order{what}");
        let rate = orders as f64 / elapsed.as_secs_f64();
        println!(
            "round {round}: ferry {rate:>9.0} orders/s{what} ({:.2} s)",
            elapsed.as_secs_f64()
        );
        Ok(rate)
    };
    for round in 1..=rounds {
        big_rates.push(ferry_round(
            round,
            &big_scheme,
            " with a 100,000-entry material map",
        )?);
        ferry_rates.push(ferry_round(round, &scheme, "")?);

        let (elapsed, printed) = run_jq(&path)?;
        assert_eq!(printed, orders, "jq mapped every order");
        let rate = orders as f64 / elapsed.as_secs_f64();
        println!(
            "round {round}: jq    {:>9.0} orders/s ({:.2} s)",
            rate,
            elapsed.as_secs_f64()
        );
        jq_rates.push(rate);
    }
    let [parse, map, serialize] = breakdown(&scheme, &path)?;
    println!("ferry per order: parse {parse:.1} µs, map {map:.1} µs, serialize {serialize:.1} µs");
    let ferry = median(ferry_rates);
    let jq = median(jq_rates);
    let big = median(big_rates);
    println!(
        "median: ferry {big:.0} orders/s with the 100,000-entry map, {:.2}x the 5-entry maps' rate",
        big / ferry
    );
    println!(
        "median: ferry {ferry:.0} orders/s, jq {jq:.0} orders/s, ratio {:.2}x (target 3x, goal 5x)",
        ferry / jq
    );
    Ok(())
}
