//! The command-line face: readable text by default, `--json` for scripts.
//! Exit codes: 0 success, 1 the command ran and found a problem (verify
//! differences, a blocking failure), 2 it could not run.

use std::process::ExitCode;

use platform::config::{DatabaseConfig, Env};
use serde_json::Value;

use crate::{Command, execute};

/// The binary outside Lambda: the command in the arguments, on the database
/// the settings name.
pub async fn run(env: &Env) -> ExitCode {
    let config = match DatabaseConfig::from_env(env) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    let command = match Command::from_args(std::env::args().skip(1)) {
        Ok(command) => command,
        Err(usage) => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    let as_json = std::env::args().any(|a| a == "--json");
    match execute(&config, &command).await {
        Ok(outcome) => {
            if as_json {
                println!("{}", outcome.result);
            } else {
                print!("{}", render(&command, &outcome.result));
            }
            if outcome.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(error) => {
            eprintln!("migrate: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// Text for people.
pub fn render(command: &Command, result: &Value) -> String {
    let mut out = String::new();
    match command {
        Command::Up => {
            let applied = result["applied"].as_array().cloned().unwrap_or_default();
            for name in &applied {
                out.push_str(&format!("applied {}\n", name.as_str().unwrap_or_default()));
            }
            out.push_str(&format!(
                "{} applied, {} already applied ({} ms)\n",
                applied.len(),
                result["already_applied"],
                result["elapsed_ms"]
            ));
        }
        Command::Status => {
            for m in result["migrations"].as_array().into_iter().flatten() {
                out.push_str(&format!(
                    "{:<8} {:<56} {}{}\n",
                    m["state"].as_str().unwrap_or_default(),
                    m["name"].as_str().unwrap_or_default(),
                    m["ledger"].as_str().unwrap_or_default(),
                    if m["checksum_matches"] == Value::Bool(false) {
                        "  (checksum differs from this build's file)"
                    } else {
                        ""
                    }
                ));
                if let Some(logs) = m["logs"].as_str() {
                    out.push_str(&format!("         {logs}\n"));
                }
            }
            for b in result["blocking"].as_array().into_iter().flatten() {
                out.push_str(&format!(
                    "BLOCKED by failed migration {}\n",
                    b.as_str().unwrap_or_default()
                ));
            }
        }
        Command::Verify => {
            let differences = result["differences"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for d in &differences {
                out.push_str(&format!("difference: {}\n", d.as_str().unwrap_or_default()));
            }
            let f = &result["figures"];
            out.push_str(&format!(
                "catalog: {} tables, {} columns, {} primary keys, {} unique indexes, {} regular indexes, {} foreign keys\n",
                f["tables"], f["columns"], f["primary_keys"], f["unique_indexes"], f["regular_indexes"], f["foreign_keys"]
            ));
            out.push_str(&format!(
                "{} differences from the contract\n",
                differences.len()
            ));
        }
        Command::Down { .. } => {
            out.push_str(&format!(
                "dropped {} tables; removed records {}\n",
                result["dropped_tables"].as_array().map_or(0, Vec::len),
                result["removed_records"]
            ));
        }
        Command::Resolve { rolled_back } => {
            out.push_str(&format!("marked {rolled_back} rolled back\n"))
        }
    }
    out
}
