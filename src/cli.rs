//! The command line as criu 4.2 reads it: every option of [`criu_options::OPTIONS`] anywhere on the
//! line (before or after the command word), in config files, as `--opt=value` or `--opt value`, short
//! forms, unambiguous prefixes of long names (getopt's), repeated `-v`. clap does the parsing from a
//! command built out of that table; this module adds what clap has no notion of: criu's config files
//! (and which file and line an option came from), criu's `-v` counting, and each option's effect on
//! the command (works, ignored, refused; see [`criu_options`]).
//!
//! `decode` and `encode` are crit's commands, not criu's: they take crit's options ([`CritArgs`]),
//! parsed apart from criu's (their `-o` is the output file, not the log).

use crate::criu_options::{self, Cmds, CriuOption, Effect, Takes, COMMANDS, OPTIONS};
use anyhow::{bail, Result};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Args, Command};
use std::path::{Path, PathBuf};

/// One parsed invocation of a criu-style command.
pub struct Invocation {
    /// The command word ("dump", "restore"...).
    pub word: String,
    /// Arguments after the command word that are not options (`show DIR`).
    pub operands: Vec<String>,
    pub m: ArgMatches,
    /// Options that have no effect on this command (criu ignores them there too), with their origin.
    pub ignored: Vec<String>,
}

impl Invocation {
    pub fn flag(&self, long: &str) -> bool {
        self.m.try_get_one::<bool>(long).ok().flatten().copied().unwrap_or(false)
    }

    /// Was the option given (on the command line or in a config file)?
    pub fn given(&self, long: &str) -> bool {
        self.m.value_source(long) == Some(ValueSource::CommandLine)
    }

    pub fn value(&self, long: &str) -> Option<&str> {
        self.m.try_get_one::<String>(long).ok().flatten().map(String::as_str)
    }

    pub fn values(&self, long: &str) -> Vec<&str> {
        self.m.try_get_many::<String>(long).ok().flatten().map(|v| v.map(String::as_str).collect()).unwrap_or_default()
    }

    pub fn path(&self, long: &str) -> Option<PathBuf> {
        self.value(long).map(PathBuf::from)
    }

    /// A number-valued option, with an error naming it when the value is not a number.
    pub fn number<T: std::str::FromStr>(&self, long: &str) -> Result<Option<T>> {
        match self.value(long) {
            None => Ok(None),
            Some(v) => match v.trim().parse() {
                Ok(n) => Ok(Some(n)),
                Err(_) => bail!("invalid argument for --{long}: {v:?} is not a number"),
            },
        }
    }

    /// criu's log level: 2, raised by one for each `-v`, or set by `-vN`/`--verbosity=N`.
    pub fn verbosity(&self) -> u8 {
        self.values("verbosity").iter().fold(2u8, |level, v| {
            if v.chars().all(|c| c == '+') {
                level.saturating_add(v.len().max(1) as u8)
            } else {
                v.parse().unwrap_or(level)
            }
        })
    }
}

/// crit's `decode` and `encode`.
#[derive(clap::Parser, Debug)]
#[command(name = "rcr", about = "Image files as JSON and back (crit's decode and encode)")]
pub struct CritCli {
    #[command(subcommand)]
    pub cmd: CritCmd,
}

#[derive(clap::Subcommand, Debug)]
pub enum CritCmd {
    /// Print image files as JSON (crit's shape).
    Decode(DecodeArgs),
    /// Turn JSON (crit's shape) back into an image file.
    Encode(EncodeArgs),
}

#[derive(Args, Debug)]
pub struct DecodeArgs {
    /// Image file or directory of images.
    #[arg(short = 'i', long = "in", value_name = "PATH")]
    pub input: PathBuf,
    /// Output file (default: stdout).
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Human-friendly values (hex, flag names), as `crit decode --pretty`.
    #[arg(long = "pretty")]
    pub pretty: bool,
}

#[derive(Args, Debug)]
pub struct EncodeArgs {
    /// JSON input (default: stdin).
    #[arg(short = 'i', long = "in", value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Image file to write.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub output: PathBuf,
}

/// What the command line asks for.
pub enum Parsed {
    Criu(Box<Invocation>),
    Crit(CritCli),
    Help(String),
    Version,
}

/// A size as criu takes it: a number of bytes, or with a K, M or G suffix (powers of 1024).
pub fn parse_size(v: &str) -> Result<u64, String> {
    let v = v.trim();
    let (num, mul) = match v.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let mul = match c.to_ascii_uppercase() {
                'K' => 1u64 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                _ => return Err(format!("'{v}': the size suffix must be K, M or G")),
            };
            (&v[..i], mul)
        }
        _ => (v, 1),
    };
    let n: u64 = num.parse().map_err(|_| format!("'{v}' is not a size (a number, optionally followed by K, M or G)"))?;
    n.checked_mul(mul).ok_or_else(|| format!("'{v}' is too large"))
}

/// The clap command for criu's options: each of the table, `no-NAME` for criu's boolean options, the
/// command word and its operands.
fn command() -> Command {
    let mut c = Command::new("rcr")
        .no_binary_name(false)
        .disable_help_flag(true)
        .disable_version_flag(true)
        .infer_long_args(true)
        .args_override_self(true)
        .arg(Arg::new("command").value_name("COMMAND").index(1))
        .arg(Arg::new("operands").value_name("ARGS").index(2).num_args(0..).allow_hyphen_values(false));
    for o in OPTIONS {
        let mut a = Arg::new(o.long).long(o.long).help(o.help);
        // -v is rewritten to --verbosity=... before parsing (criu counts it, clap cannot).
        if let Some(s) = o.short.filter(|&s| s != 'v') {
            a = a.short(s);
        }
        a = match o.takes {
            Takes::Nothing => a.action(ArgAction::SetTrue),
            Takes::Bool => a.action(ArgAction::SetTrue).overrides_with(no_name(o)),
            Takes::Value => a.action(ArgAction::Set).num_args(1),
            Takes::Optional if o.long == "verbosity" => a.action(ArgAction::Append).num_args(1).require_equals(true),
            Takes::Optional => a.action(ArgAction::Set).num_args(0..=1).require_equals(true).default_missing_value(""),
            Takes::List => a.action(ArgAction::Append).num_args(1),
        };
        c = c.arg(a);
        if o.takes == Takes::Bool {
            c = c.arg(Arg::new(no_name(o)).long(no_name(o)).action(ArgAction::SetTrue).overrides_with(o.long).hide(true));
        }
    }
    c
}

fn no_name(o: &CriuOption) -> &'static str {
    // The table is static; the names are made once per process.
    Box::leak(format!("no-{}", o.long).into_boxed_str())
}

/// criu's spellings of -v (`-v`, `-vvv`, `-v4`, `--verbosity`, `--verbosity=4`) as `--verbosity=+`,
/// `--verbosity=+++`, `--verbosity=4`: one occurrence each, counted in [`Invocation::verbosity`].
fn rewrite_verbosity(arg: &str) -> Option<String> {
    if arg == "--verbosity" {
        return Some("--verbosity=+".into());
    }
    if arg.starts_with("--verbosity=") {
        return Some(arg.to_string());
    }
    let rest = arg.strip_prefix("-v")?;
    if rest.chars().all(|c| c == 'v') {
        Some(format!("--verbosity={}", "+".repeat(rest.len() + 1)))
    } else if rest.chars().all(|c| c.is_ascii_digit()) {
        Some(format!("--verbosity={rest}"))
    } else {
        None
    }
}

/// Where each argument of the combined line came from.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Origin {
    CommandLine,
    Config { file: PathBuf, line: usize },
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::CommandLine => write!(f, "on the command line"),
            Origin::Config { file, line } => write!(f, "from {} line {line}", file.display()),
        }
    }
}

/// The index of the command word in `args` (the first argument that is neither an option nor an
/// option's value), skipping option values by the table.
fn command_index(args: &[String]) -> Option<usize> {
    let mut i = 1;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            return None;
        }
        if let Some(long) = a.strip_prefix("--") {
            if !long.contains('=') && takes_separate_value(long_match(long)) {
                i += 1;
            }
        } else if let Some(shorts) = a.strip_prefix('-').filter(|s| !s.is_empty()) {
            // In a cluster (-Rj), the first letter that takes a value takes the rest of the cluster, or
            // the next argument when it ends the cluster.
            for (j, c) in shorts.char_indices() {
                let o = OPTIONS.iter().find(|o| o.short == Some(c) && c != 'v');
                if o.is_some_and(|o| o.takes != Takes::Nothing && o.takes != Takes::Bool) {
                    if j + c.len_utf8() == shorts.len() && takes_separate_value(o) {
                        i += 1;
                    }
                    break;
                }
            }
        } else {
            return Some(i);
        }
        i += 1;
    }
    None
}

fn takes_separate_value(o: Option<&CriuOption>) -> bool {
    o.is_some_and(|o| matches!(o.takes, Takes::Value | Takes::List))
}

/// The option a long name (or getopt's unambiguous prefix of one) names.
fn long_match(name: &str) -> Option<&'static CriuOption> {
    criu_options::by_long(name).or_else(|| {
        let mut m = OPTIONS.iter().filter(|o| o.long.starts_with(name));
        let first = m.next()?;
        m.next().is_none().then_some(first)
    })
}

/// The config files criu would read, in its order: the default ones (unless `--no-default-config`
/// or `--config`), the one named by `$RCR_CONFIG_FILE` (else `$CRIU_CONFIG_FILE`), the `--config` one.
fn config_files(args: &[String]) -> Vec<(PathBuf, bool)> {
    let mut cfg: Option<String> = None;
    let mut no_default = false;
    for (i, a) in args.iter().enumerate() {
        if a == "--" {
            break;
        } else if a == "--no-default-config" {
            no_default = true;
        } else if a == "--config" {
            cfg = args.get(i + 1).cloned();
            no_default = true;
        } else if let Some(p) = a.strip_prefix("--config=") {
            cfg = Some(p.to_string());
            no_default = true;
        }
    }
    let mut files = Vec::new();
    if !no_default {
        files.push((PathBuf::from("/etc/rcr/default.conf"), false));
        if let Some(home) = std::env::var_os("HOME") {
            files.push((Path::new(&home).join(".rcr/default.conf"), false));
        }
    }
    let env = std::env::var_os("RCR_CONFIG_FILE").or_else(|| std::env::var_os("CRIU_CONFIG_FILE"));
    if let Some(p) = env.filter(|p| !p.is_empty()) {
        files.push((PathBuf::from(p), true));
    }
    if let Some(p) = cfg {
        files.push((PathBuf::from(p), true));
    }
    files
}

/// One statement of a config file: its arguments and its line number.
pub type Statement = (Vec<String>, usize);

/// One config file's statements as arguments, each with its line number. The syntax is criu's: `name`
/// or `name value` per line (the name without dashes; rcr also takes them with), a value in double
/// quotes may hold spaces and `\"`, `#` starts a comment. Anything else is an error naming the line.
pub fn parse_config(text: &str) -> Result<Vec<Statement>, (usize, String)> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let ln = i + 1;
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, rest) = line.split_once([' ', '\t']).unwrap_or((line, ""));
        let name = name.trim_start_matches('-');
        let mut args = vec![if name.chars().count() == 1 { format!("-{name}") } else { format!("--{name}") }];
        let rest = rest.trim_start();
        let (value, after) = if let Some(q) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = q.char_indices();
            let mut end = None;
            while let Some((j, c)) = chars.next() {
                match c {
                    '\\' if q[j + 1..].starts_with('"') => {
                        v.push('"');
                        chars.next();
                    }
                    '"' => {
                        end = Some(j + 1);
                        break;
                    }
                    c => v.push(c),
                }
            }
            let Some(end) = end else { return Err((ln, "a quoted value with no closing quote".into())) };
            (Some(v), &q[end..])
        } else if rest.is_empty() || rest.starts_with('#') {
            (None, "")
        } else {
            let (v, after) = rest.split_once([' ', '\t']).unwrap_or((rest, ""));
            let v = v.split('#').next().unwrap_or(v);
            (Some(v.to_string()), after)
        };
        let after = after.trim_start();
        if !after.is_empty() && !after.starts_with('#') {
            return Err((ln, format!("more than one value: {:?} (quote a value with spaces)", after)));
        }
        match value {
            // An optional value is taken only attached (getopt's rule): `verbosity 4` is --verbosity=4.
            Some(v) if long_match(name).is_some_and(|o| o.takes == Takes::Optional) => args[0] = format!("{}={v}", args[0]),
            v => args.extend(v),
        }
        out.push((args, ln));
    }
    Ok(out)
}

/// Parses `args` (without the program name) with [`command`].
fn parse_args(argv0: &str, args: &[String]) -> Result<ArgMatches, clap::Error> {
    command().try_get_matches_from(std::iter::once(argv0.to_string()).chain(args.iter().cloned()))
}

/// The options `m` holds from its arguments (not defaults): criu's names; a `no-NAME` form, which asks
/// for what rcr does without the option, is not listed.
fn given(m: &ArgMatches) -> Vec<&'static str> {
    OPTIONS.iter().map(|o| o.long).filter(|id| m.value_source(id) == Some(ValueSource::CommandLine)).collect()
}

/// The first line of a clap error, without clap's "error: " and tips.
fn clap_message(e: &clap::Error) -> String {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or("").trim();
    first.strip_prefix("error: ").unwrap_or(first).to_string()
}

/// Parses rcr's command line (and the config files it implies) the way criu 4.2 does.
pub fn parse(raw: Vec<String>) -> Result<Parsed> {
    let before_dashdash = || raw.iter().skip(1).take_while(|a| a.as_str() != "--");
    if before_dashdash().any(|a| a == "--help" || a == "-h") {
        return Ok(Parsed::Help(usage()));
    }
    if before_dashdash().any(|a| a == "--version" || a == "-V") {
        return Ok(Parsed::Version);
    }
    let at = command_index(&raw);
    let word = at.map(|i| raw[i].clone());
    if let Some(w @ ("decode" | "encode")) = word.as_deref() {
        let mut args = vec![raw[0].clone(), w.to_string()];
        args.extend_from_slice(&raw[at.map_or(raw.len(), |i| i + 1)..]);
        return Ok(Parsed::Crit(<CritCli as clap::Parser>::parse_from(args)));
    }
    let Some(word) = word else { bail!("a command is required: {}", command_words()) };
    let cmd = match COMMANDS.iter().find(|(w, _, _)| *w == word) {
        Some(&(_, c, true)) => c,
        Some(&(w, _, false)) => {
            let why = if w == "pre-dump" { " (memory pre-copy; plugins reserve RCR_STAGE_PRE_DUMP for it)" } else { "" };
            bail!("'{w}' is a criu command that rcr does not support yet{why}; use rcr dump");
        }
        None => bail!("unknown command {word:?}: {}", command_words()),
    };

    // The combined line: config statements first (in criu's order), then the command line, so that
    // the command line wins. Each statement is parsed alone too: for its errors (naming its file and
    // line) and to know which options it set.
    let mut args = vec![raw[0].clone()];
    let mut from_config: Vec<(Vec<&'static str>, Origin)> = Vec::new();
    for (file, must_exist) in config_files(&raw) {
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => continue,
            Err(e) => bail!("cannot read config file {}: {e}", file.display()),
        };
        let statements = parse_config(&text).map_err(|(ln, why)| anyhow::anyhow!("config file {} line {ln}: {why}", file.display()))?;
        for (stmt, line) in statements {
            let stmt: Vec<String> = stmt.iter().map(|a| rewrite_verbosity(a).unwrap_or_else(|| a.clone())).collect();
            if stmt.iter().any(|a| a == "--config" || a == "--no-default-config") {
                bail!("config file {} line {line}: --config and --no-default-config belong on the command line", file.display());
            }
            let sm = parse_args(&raw[0], &stmt).map_err(|e| anyhow::anyhow!("config file {} line {line}: {}", file.display(), clap_message(&e)))?;
            from_config.push((given(&sm), Origin::Config { file: file.clone(), line }));
            args.extend(stmt);
        }
    }
    let cmdline: Vec<String> = {
        let mut past_dashdash = false;
        raw[1..]
            .iter()
            .map(|a| {
                past_dashdash |= a == "--";
                if past_dashdash { a.clone() } else { rewrite_verbosity(a).unwrap_or_else(|| a.clone()) }
            })
            .collect()
    };
    let on_cmdline = parse_args(&raw[0], &cmdline).map_err(|e| anyhow::anyhow!("{}; `rcr --help` lists the options", clap_message(&e)))?;
    args.extend(cmdline.iter().cloned());
    let m = parse_args(&raw[0], &args[1..]).map_err(|e| anyhow::anyhow!("{}; `rcr --help` lists the options", clap_message(&e)))?;

    let origin_of = |id: &str| {
        if given(&on_cmdline).contains(&id) {
            return Origin::CommandLine;
        }
        from_config.iter().rev().find(|(ids, _)| ids.contains(&id)).map_or(Origin::CommandLine, |(_, o)| o.clone())
    };
    let mut refused = Vec::new();
    let mut ignored = Vec::new();
    for o in given(&m).into_iter().filter_map(criu_options::by_long) {
        let effect = match o.effect(cmd) {
            // Only the bare form: criu's list of inodes is not taken.
            Effect::Works if o.long == "ext-unix-sk" && m.get_one::<String>(o.long).is_some_and(|v| !v.is_empty()) => Effect::Refused,
            e => e,
        };
        match (effect, origin_of(o.long)) {
            (Effect::Works, _) => {}
            (Effect::Refused, Origin::CommandLine) => refused.push(format!("--{}", o.long)),
            (Effect::Refused, origin) => refused.push(format!("--{} ({origin})", o.long)),
            (Effect::Ignored, origin) => ignored.push(format!("--{} ({origin})", o.long)),
        }
    }
    if !refused.is_empty() {
        let (these, it) = if refused.len() == 1 { ("option", "it") } else { ("options", "them") };
        bail!(
            "rcr {word} does not support the criu {these} {} yet (criu acts on {it} on {word}); run without {it}",
            refused.join(", ")
        );
    }
    let operands: Vec<String> = m.get_many::<String>("operands").map(|v| v.cloned().collect()).unwrap_or_default();
    let max = if cmd == Cmds::SHOW || word == "swrk" { 1 } else { 0 };
    if operands.len() > max {
        bail!("excessive parameters for command {word}: {}", operands.join(" "));
    }
    Ok(Parsed::Criu(Box::new(Invocation { word, operands, m, ignored })))
}

fn command_words() -> String {
    let have: Vec<&str> = COMMANDS.iter().filter(|c| c.2).map(|c| c.0).chain(["decode", "encode"]).collect();
    format!("one of {}", have.join(", "))
}

/// `rcr --help`: the commands and, per option, what it does and on which commands rcr takes it.
pub fn usage() -> String {
    let mut s = String::from(
        "rcr: checkpoint/restore for Linux processes, with criu 4.2's command line\n\n\
         Usage: rcr [OPTIONS] COMMAND [OPTIONS]\n\n\
         Commands:\n  dump      checkpoint a process tree (-t PID) into the images directory (-D DIR)\n\
         \x20 restore   restore a process tree from the images directory\n\
         \x20 check     check that the kernel offers what rcr needs (--feature NAME, --all)\n\
         \x20 swrk FD   serve CRIU's RPC (runc, podman, libcriu) on the inherited socket FD\n\
         \x20 service   serve CRIU's RPC on a unix socket (--address PATH; default criu_service.socket)\n\
         \x20 show      print a summary of a checkpoint (rcr show [DIR])\n\
         \x20 plugins   list the plugins that would load (-L DIR) and their hooks\n\
         \x20 decode    print image files as JSON, as crit (rcr decode -i PATH [-o FILE] [--pretty])\n\
         \x20 encode    turn JSON back into an image file, as crit (rcr encode [-i FILE] -o FILE)\n\n\
         Options (criu's; any of them before or after the command word, or in a config file):\n",
    );
    for o in OPTIONS {
        let short = o.short.map_or(String::from("    "), |c| format!("-{c}, "));
        let works = works_on(o);
        s.push_str(&format!("  {short}--{:<24} {}{}\n", o.long, o.help, if works.is_empty() { " [not supported yet]".into() } else { format!(" [{works}]") }));
    }
    s.push_str(
        "\nConfig files, as criu's: /etc/rcr/default.conf, ~/.rcr/default.conf, $RCR_CONFIG_FILE (else\n\
         $CRIU_CONFIG_FILE), --config FILE; one option per line, without dashes: `tcp-close`, `verbosity 4`.\n",
    );
    s
}

/// The commands on which rcr does what criu does with `o`, as text.
pub fn works_on(o: &CriuOption) -> String {
    if o.rcr == Cmds::ALL {
        return "all commands".into();
    }
    COMMANDS.iter().filter(|(_, c, have)| *have && o.rcr.has(*c)).map(|(w, _, _)| *w).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
#[path = "cli_tests.rs"]
mod tests;
