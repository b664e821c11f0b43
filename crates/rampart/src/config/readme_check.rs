//! README.md's configuration tables and the settings table say the same: every variable,
//! its default and its meaning, in the right table.

use std::collections::BTreeMap;

use super::{
    env_name,
    settings::{Group, PROCESS_VARIABLES, grouped},
};

const README: &str = include_str!("../../../../README.md");

/// `variable → (table, default, meaning)`.
type Rows = BTreeMap<String, (Group, String, String)>;

/// The rows of the tables in README.md's "Configuration" section, in its order of tables.
fn readme_rows(readme: &str) -> Result<Rows, String> {
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("Configuration\n"))
        .ok_or("README.md has no `## Configuration` section")?;
    let groups = [Group::Main, Group::Tunables, Group::Identity];
    let mut table = None;
    let mut rows = Rows::new();
    for line in section.lines().map(str::trim) {
        if line.starts_with("| variable | default | meaning |") {
            let next = table.map_or(0, |t| t + 1);
            groups
                .get(next)
                .ok_or("README.md's Configuration section has more than three tables")?;
            table = Some(next);
            continue;
        }
        let Some(t) = table.filter(|_| line.starts_with("| `")) else {
            continue;
        };
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
        let [names, default, meaning] = cells[..] else {
            return Err(format!("a README row without three cells: {line}"));
        };
        for name in names.split(',') {
            let name = name.trim().trim_matches('`').to_owned();
            let row = (groups[t], default.to_owned(), meaning.to_owned());
            if rows.insert(name.clone(), row).is_some() {
                return Err(format!("{name} is documented twice"));
            }
        }
    }
    Ok(rows)
}

/// The same rows, from the code.
fn code_rows() -> Rows {
    let settings = grouped().into_iter().flat_map(|(group, settings)| {
        settings.iter().map(move |s| {
            let row = (group, s.documented_default(), s.doc.to_owned());
            (env_name(s.key), row)
        })
    });
    let process = PROCESS_VARIABLES.iter().map(|p| {
        let row = (Group::Main, p.default.to_owned(), p.doc.to_owned());
        (p.name.to_owned(), row)
    });
    settings.chain(process).collect()
}

/// Every difference, one line each, naming the row the README should have.
fn differences(readme: &Rows, code: &Rows) -> Vec<String> {
    let mut out = Vec::new();
    for (name, (group, default, doc)) in code {
        match readme.get(name) {
            None => out.push(format!(
                "missing from README ({group:?} table): | `{name}` | {default} | {doc} |"
            )),
            Some(documented) if documented != &(*group, default.clone(), doc.clone()) => {
                out.push(format!(
                    "README says {documented:?} for {name}; the code: ({group:?} table) | `{name}` | {default} | {doc} |"
                ))
            }
            Some(_) => {}
        }
    }
    for name in readme.keys().filter(|n| !code.contains_key(*n)) {
        out.push(format!(
            "README documents {name}, which the code does not read"
        ));
    }
    out
}

#[test]
fn the_readme_tables_and_the_settings_table_agree() {
    let readme = readme_rows(README).unwrap();
    let differences = differences(&readme, &code_rows());
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

#[test]
fn the_readme_check_notices_a_wrong_default_a_missing_row_and_an_extra_row() {
    let tampered = README
        .replace(
            "| `RAMPART_LISTEN` | `127.0.0.1:8080` |",
            "| `RAMPART_LISTEN` | `0.0.0.0:8080` |",
        )
        .replace("| `RAMPART_HASH_QUEUE` |", "| `RAMPART_HASH_QUEUE_TYPO` |");
    assert_ne!(
        tampered, README,
        "the README rows this test edits have moved"
    );
    let differences = differences(&readme_rows(&tampered).unwrap(), &code_rows()).join("\n");
    assert!(
        differences.contains("README says") && differences.contains("RAMPART_LISTEN"),
        "{differences}"
    );
    assert!(
        differences.contains("missing from README (Identity table): | `RAMPART_HASH_QUEUE`"),
        "{differences}"
    );
    assert!(
        differences.contains("RAMPART_HASH_QUEUE_TYPO, which the code does not read"),
        "{differences}"
    );
}
