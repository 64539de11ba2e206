//! Mapping throughput of scheme 1 (WDT orders → Kingdee) on one core, side by side with jq running the
//! equivalent mapping (benches/wdt-trades-to-kingdee.jq, given the scheme's value maps as JSON) over the
//! same corpus in the same run.
//!
//! `cargo bench -p ferry-tests --bench mapping` maps 100,000 generated orders, three rounds each,
//! alternating, and prints the medians and their ratios:
//! - **through the command users run**: `ferry preview SCHEME FILE.jsonl` (the release binary, its own
//!   parse and output included) against `jq -c`, both pinned to one core (`taskset -c 0`), stdout
//!   read to the end by the benchmark; on the bundled scheme and on a *realistic* copy of it whose
//!   value maps hold hundreds of entries (300 shops, 600 materials, 60 warehouses), as a retailer's do;
//! - in-process: the library's parse, map and serialize, as a breakdown of where the time goes.
//!
//! Under `cargo test --all-targets` (no `--bench` argument) it runs a small smoke round instead, and
//! first checks that jq's bodies equal Ferry's field for field (numbers compared by value: jq has only
//! floats), for both schemes.
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
/// The jq program of the mapping, given the maps file.
fn jq(maps: &Path) -> Command {
    let program = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/wdt-trades-to-kingdee.jq");
    let mut command = Command::new("jq");
    command
        .arg("-c")
        .arg("--slurpfile")
        .arg("maps")
        .arg(maps)
        .arg("-f")
        .arg(program);
    command
}

/// Runs `command` on one core (`taskset -c 0`) and counts the lines it prints, reading its
/// standard output to the end as a pipe to the next tool would.
fn run_pinned(command: &Command) -> std::io::Result<(Duration, u64)> {
    let mut pinned = Command::new("taskset");
    pinned.arg("-c").arg("0").arg(command.get_program());
    pinned.args(command.get_args());
    let start = Instant::now();
    let mut child = pinned
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut lines = 0;
    let mut reader = BufReader::with_capacity(1 << 20, child.stdout.take().expect("piped"));
    let mut buffer = Vec::new();
    while reader.read_until(b'\n', &mut buffer)? > 0 {
        lines += 1;
        buffer.clear();
    }
    let output = child.wait_with_output()?;
    assert!(
        output.status.success(),
        "{:?} failed: {}",
        command.get_program(),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok((start.elapsed(), lines))
}

/// The bodies Ferry and jq produce for the corpus must agree field for field.
fn check_equivalent(scheme: &Scheme, maps: &Path, corpus: &Path) -> std::io::Result<u64> {
    let output = jq(maps).arg(corpus).output()?;
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

/// A scheme file and its value maps as JSON objects (`{"shop_customer": {...}, ...}`, for jq).
struct SchemeFiles {
    scheme: Scheme,
    path: PathBuf,
    maps: PathBuf,
    entries: usize,
}

/// Writes `text` (scheme 1, perhaps with `entries_file`s) to `dir`, with the maps file jq reads:
/// each value map's inline entries plus `extra` (map name → CSV rows), exactly what Ferry loads.
fn scheme_files(
    dir: &Path,
    name: &str,
    text: &str,
    extra: &[(&str, Vec<(String, String)>)],
) -> std::io::Result<SchemeFiles> {
    std::fs::create_dir_all(dir)?;
    let mut text = text.to_owned();
    for (map, rows) in extra {
        let file = format!("{name}-{map}.csv");
        let mut csv = String::from("key,value\n");
        for (key, value) in rows {
            csv.push_str(&format!("{key},{value}\n"));
        }
        std::fs::write(dir.join(&file), csv)?;
        text = text.replacen(
            &format!("  {map}:\n"),
            &format!("  {map}:\n    entries_file: {file}\n"),
            1,
        );
    }
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, &text)?;
    let yaml: serde_json::Value = serde_saphyr::from_str(&text).expect("the scheme is YAML");
    let mut maps = serde_json::Map::new();
    let mut entries = 0;
    for (map, config) in yaml["value_maps"].as_object().expect("value maps") {
        let mut table = config["entries"].as_object().cloned().unwrap_or_default();
        if let Some((_, rows)) = extra.iter().find(|(name, _)| name == map) {
            for (key, value) in rows {
                table.insert(key.clone(), value.clone().into());
            }
        }
        entries += table.len();
        maps.insert(map.clone(), table.into());
    }
    let maps_path = dir.join(format!("{name}-maps.json"));
    std::fs::write(&maps_path, serde_json::Value::Object(maps).to_string())?;
    let scheme = Scheme::load_str(
        &path.display().to_string(),
        &text,
        &ferry_sandbox::demo_variable,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    Ok(SchemeFiles {
        scheme,
        path,
        maps: maps_path,
        entries,
    })
}

/// A retailer's tables: 300 shops (the generator's 5 among them), 600 materials (the generator's 36
/// specs among them, mapped to material numbers), 60 warehouses.
fn realistic_maps() -> Vec<(&'static str, Vec<(String, String)>)> {
    let mut materials: Vec<(String, String)> = Vec::new();
    for goods in 1001..=1012 {
        for spec in 1..=3 {
            materials.push((
                format!("G{goods}-{spec:02}"),
                format!("MAT-{goods}-{spec:02}"),
            ));
        }
    }
    materials
        .extend((materials.len()..600).map(|i| (format!("SKU-{i:05}"), format!("MAT-{i:05}"))));
    let shops = (5..300)
        .map(|i| (format!("shop-{i:03}"), format!("CUST-{i:04}")))
        .collect();
    let warehouses = (3..60)
        .map(|i| (format!("WH-{i:03}"), format!("CK{i:03}")))
        .collect();
    vec![
        ("shop_customer", shops),
        ("material", materials),
        ("warehouse_stock", warehouses),
    ]
}

/// `ferry preview SCHEME CORPUS`: the command users run, on JSON Lines.
fn ferry_preview(files: &SchemeFiles, corpus: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferry-bin"));
    command
        .arg("preview")
        .arg(&files.path)
        .arg(corpus)
        .arg("--var")
        .arg(format!(
            "FERRY_KINGDEE_PROJECT={}",
            ferry_sandbox::demo_variable("FERRY_KINGDEE_PROJECT").unwrap_or_default()
        ));
    command
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
    let dir = path_beside_corpus("schemes");
    let bundled = scheme_files(&dir, "bundled", &scheme_text, &[])?;
    let realistic = scheme_files(&dir, "realistic", &scheme_text, &realistic_maps())?;
    let big = scheme_files(
        &dir,
        "big",
        &scheme_text,
        &[(
            "material",
            (0..100_000)
                .map(|i| (format!("SKU-{i:06}"), format!("MAT-{i:06}")))
                .chain((1001..=1012).flat_map(|g| {
                    (1..=3).map(move |s| (format!("G{g}-{s:02}"), format!("G{g}-{s:02}")))
                }))
                .collect(),
        )],
    )?;
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
    println!(
        "value maps: bundled scheme {} entries, realistic copy {} entries",
        bundled.entries, realistic.entries
    );

    if !bench {
        for files in [&bundled, &realistic] {
            let compared = check_equivalent(&files.scheme, &files.maps, &path)?;
            println!(
                "ferry and jq agree on all {compared} bodies ({} entries in the value maps)",
                files.entries
            );
        }
        println!("(a smoke round in a test build: the figures below are not the benchmark)");
    }

    // Through the commands, one core each, alternating.
    let mut rates: [Vec<f64>; 4] = Default::default();
    let preview = |files: &SchemeFiles| {
        let mut c = ferry_preview(files, &path);
        c.arg("--compact");
        c
    };
    let jq_on = |files: &SchemeFiles| {
        let mut c = jq(&files.maps);
        c.arg(&path);
        c
    };
    let runs: [(&str, Command); 4] = [
        ("ferry preview, bundled maps  ", preview(&bundled)),
        ("jq -c,         bundled maps  ", jq_on(&bundled)),
        ("ferry preview, realistic maps", preview(&realistic)),
        ("jq -c,         realistic maps", jq_on(&realistic)),
    ];
    for round in 1..=rounds {
        for ((name, command), rates) in runs.iter().zip(rates.iter_mut()) {
            let (elapsed, printed) = run_pinned(command)?;
            assert_eq!(printed, orders, "{name}: a body per order");
            let rate = orders as f64 / elapsed.as_secs_f64();
            println!(
                "round {round}: {name} {rate:>9.0} orders/s ({:.2} s)",
                elapsed.as_secs_f64()
            );
            rates.push(rate);
        }
    }
    let [preview, jq_bundled, preview_realistic, jq_realistic] = rates.map(median);

    // In process: the library alone, and where its time goes.
    let mut library = Vec::new();
    let mut library_big = Vec::new();
    for round in 1..=rounds {
        for (files, rates, what) in [
            (&bundled, &mut library, ""),
            (&big, &mut library_big, " with a 100,000-entry material map"),
        ] {
            let (elapsed, mapped) = run_ferry(&files.scheme, &path)?;
            assert_eq!(mapped, orders, "ferry mapped every order{what}");
            let rate = orders as f64 / elapsed.as_secs_f64();
            println!("round {round}: in-process ferry {rate:>9.0} orders/s{what}");
            rates.push(rate);
        }
    }
    let [parse, map, serialize] = breakdown(&bundled.scheme, &path)?;
    println!("ferry per order: parse {parse:.1} µs, map {map:.1} µs, serialize {serialize:.1} µs");
    let (library, library_big) = (median(library), median(library_big));
    println!(
        "median: in-process ferry {library:.0} orders/s ({:.2}x jq); {library_big:.0} with the \
         100,000-entry map ({:.2}x the bundled maps' rate)",
        library / jq_bundled,
        library_big / library
    );
    println!(
        "median, one core: ferry preview {preview:.0} orders/s, jq {jq_bundled:.0} orders/s, \
         ratio {:.2}x (bundled maps, {} entries)",
        preview / jq_bundled,
        bundled.entries
    );
    println!(
        "median, one core: ferry preview {preview_realistic:.0} orders/s, jq {jq_realistic:.0} \
         orders/s, ratio {:.2}x (realistic maps, {} entries; goal 5x)",
        preview_realistic / jq_realistic,
        realistic.entries
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
