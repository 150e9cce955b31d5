//! The parser against criu's option model: every option of the table, in every place criu takes it.

use super::*;

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// Parses with no config file (a test must not read the machine's).
fn parse_no_config(args: &[&str]) -> Result<Box<Invocation>> {
    let mut v = s(args);
    v.insert(1, "--no-default-config".into());
    match parse(v)? {
        Parsed::Criu(inv) => Ok(inv),
        _ => bail!("not a criu command"),
    }
}

fn err(args: &[&str]) -> String {
    match parse_no_config(args) {
        Ok(_) => panic!("{args:?} parsed"),
        Err(e) => e.to_string(),
    }
}

/// A value criu would take for an option that wants one.
fn sample(o: &CriuOption) -> &'static str {
    match o.long {
        "tree" | "close" | "status-fd" | "ps-socket" | "port" | "timeout" => "7",
        "ghost-limit" => "1M",
        "network-lock" => "nftables",
        _ => "x",
    }
}

/// Every option of criu's table, on every command rcr has, before and after the command word, is
/// taken as criu would (works), accepted (ignored) or refused by name; never "unexpected argument".
#[test]
fn every_criu_option_on_every_command() {
    for &(word, cmd, have) in COMMANDS {
        if !have {
            continue;
        }
        for o in OPTIONS {
            if ["help", "version", "config", "no-default-config"].contains(&o.long) {
                continue;
            }
            let forms: Vec<Vec<String>> = match o.takes {
                Takes::Nothing | Takes::Bool => vec![s(&[&format!("--{}", o.long)])],
                Takes::Value | Takes::List => vec![s(&[&format!("--{}", o.long), sample(o)]), s(&[&format!("--{}={}", o.long, sample(o))])],
                Takes::Optional => vec![s(&[&format!("--{}", o.long)])],
            };
            for form in forms {
                for before in [true, false] {
                    let mut args = vec!["rcr".to_string()];
                    if before {
                        args.extend(form.iter().cloned());
                        args.push(word.into());
                    } else {
                        args.push(word.into());
                        args.extend(form.iter().cloned());
                    }
                    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
                    match (o.effect(cmd), parse_no_config(&refs)) {
                        (Effect::Refused, Ok(_)) => panic!("{args:?} parsed, but rcr cannot do what criu does with --{}", o.long),
                        (Effect::Refused, Err(e)) => {
                            let e = e.to_string();
                            assert!(e.contains(&format!("--{}", o.long)) && e.contains("does not support"), "{args:?}: {e}");
                        }
                        (Effect::Works, Err(e)) => panic!("{args:?}: {e}"),
                        (Effect::Works, Ok(inv)) => assert!(inv.given(o.long), "{args:?}: --{} not seen", o.long),
                        (Effect::Ignored, Err(e)) => panic!("{args:?} refused although criu ignores --{} on {word}: {e}", o.long),
                        (Effect::Ignored, Ok(inv)) => {
                            assert!(inv.ignored.iter().any(|i| i.starts_with(&format!("--{} ", o.long))), "{args:?}: {:?}", inv.ignored)
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn bool_options_have_no_forms_and_the_last_wins() {
    let inv = parse_no_config(&["rcr", "dump", "-t", "1", "--ghost-fiemap", "--no-ghost-fiemap"]).unwrap();
    assert!(!inv.flag("ghost-fiemap"));
    let inv = parse_no_config(&["rcr", "--no-ghost-fiemap", "dump", "-t", "1", "--ghost-fiemap"]).unwrap();
    assert!(inv.flag("ghost-fiemap"));
    // Turning off an option rcr lacks asks for what rcr does anyway.
    assert!(parse_no_config(&["rcr", "dump", "-t", "1", "--no-tcp-established"]).is_ok());
}

#[test]
fn short_forms_clusters_and_prefixes() {
    let inv = parse_no_config(&["rcr", "-D/x", "dump", "-Rj", "-t5", "-o", "d.log", "--leave-r"]).unwrap();
    assert_eq!(inv.value("images-dir"), Some("/x"));
    assert_eq!(inv.number::<i32>("tree").unwrap(), Some(5));
    assert!(inv.flag("leave-running") && inv.flag("shell-job"));
    assert_eq!(inv.value("log-file"), Some("d.log"));
    assert!(parse_no_config(&["rcr", "dump", "--l"]).is_err(), "an ambiguous prefix is an error, as getopt's");
}

#[test]
fn verbosity_counts_as_criu_s() {
    let v = |a: &[&str]| parse_no_config(a).unwrap().verbosity();
    assert_eq!(v(&["rcr", "check"]), 2);
    assert_eq!(v(&["rcr", "check", "-v"]), 3);
    assert_eq!(v(&["rcr", "-v", "check", "-v"]), 4);
    assert_eq!(v(&["rcr", "check", "-vvvvvv"]), 8);
    assert_eq!(v(&["rcr", "check", "-v4"]), 4);
    assert_eq!(v(&["rcr", "check", "--verbosity=1", "-v"]), 2);
    assert_eq!(v(&["rcr", "--verbosity", "check"]), 3);
}

#[test]
fn lxc_s_dump_line_names_each_unsupported_option() {
    let e = err(&[
        "rcr", "dump", "--tcp-established", "--file-locks", "--link-remap", "--manage-cgroups=full", "--ext-mount-map", "auto",
        "--enable-external-sharing", "--enable-external-masters", "--enable-fs", "hugetlbfs", "--enable-fs", "tracefs", "-D", "/d",
        "-o", "dump.log", "-t", "42", "-vvvvvv",
    ]);
    for o in ["--tcp-established", "--manage-cgroups", "--ext-mount-map", "--enable-external-sharing", "--enable-external-masters", "--enable-fs"] {
        assert!(e.contains(o), "{o} not named: {e}");
    }
    for o in ["--file-locks", "--link-remap", "--images-dir", "--log-file", "--tree"] {
        assert!(!e.contains(o), "{o} named: {e}");
    }
}

#[test]
fn harness_lines_pass_common_options_to_every_command() {
    let inv = parse_no_config(&["rcr", "dump", "-t", "1", "-D", "/d", "--pidfile", "p", "--restore-detached"]).unwrap();
    assert!(inv.ignored.iter().any(|i| i.starts_with("--pidfile ")) && inv.ignored.iter().any(|i| i.starts_with("--restore-detached ")));
    let inv = parse_no_config(&["rcr", "restore", "-t", "1", "-D", "/d", "--leave-running", "--pidfile", "p"]).unwrap();
    assert_eq!(inv.value("pidfile"), Some("p"));
    assert!(parse_no_config(&["rcr", "-o", "x.log", "show", "/d"]).is_ok());
    assert!(err(&["rcr", "check", "extra"]).contains("excessive parameters"));
}

#[test]
fn commands_rcr_lacks_are_named() {
    assert!(err(&["rcr", "-L", "/x", "pre-dump", "-t", "1"]).contains("'pre-dump' is a criu command that rcr does not support yet"));
    assert!(err(&["rcr", "page-server"]).contains("'page-server'"));
    // A value is not a command word.
    assert_eq!(parse_no_config(&["rcr", "-D", "pre-dump", "dump", "-t", "1"]).unwrap().word, "dump");
    assert!(err(&["rcr", "frobnicate"]).contains("unknown command"));
}

#[test]
fn config_statements_as_criu_writes_them() {
    let text = "# comment\nverbosity 4\n  tcp-close\n\nlog-file \"a b.log\" # trailing\nlsm-profile \"x:\\\"y\\\"\"\n-R\n";
    let st = parse_config(text).unwrap();
    let args: Vec<Vec<String>> = st.iter().map(|(a, _)| a.clone()).collect();
    assert_eq!(args, vec![s(&["--verbosity=4"]), s(&["--tcp-close"]), s(&["--log-file", "a b.log"]), s(&["--lsm-profile", "x:\"y\""]), s(&["-R"])]);
    assert_eq!(st.iter().map(|(_, l)| *l).collect::<Vec<_>>(), vec![2, 3, 5, 6, 7]);
    assert_eq!(parse_config("log-file a b\n").unwrap_err().0, 1);
    assert_eq!(parse_config("ok\nlog-file \"open\n").unwrap_err().0, 2);
}

#[test]
fn size_values() {
    assert_eq!(parse_size("4096"), Ok(4096));
    assert_eq!(parse_size("5M"), Ok(5 << 20));
    assert_eq!(parse_size("2k"), Ok(2048));
    assert_eq!(parse_size("1G"), Ok(1 << 30));
    assert!(parse_size("5X").is_err() && parse_size("M").is_err());
}
