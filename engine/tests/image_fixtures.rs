//! Shared helpers for the image tests (included with `#[path]` by the image_*.rs tests):
//! fully populated messages, a realistic dump's image set, and a crit runner with timeouts.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use prost_reflect::{Cardinality, DescriptorPool, DynamicMessage, ReflectMessage, Kind as PKind, MessageDescriptor, Value};
use rcr_engine::image::{pagemap, pb, ImgWriter, Kind, Layout};

pub fn pool() -> &'static DescriptorPool {
    pb::descriptor_pool().unwrap()
}

pub fn desc(name: &str) -> MessageDescriptor {
    pool().get_message_by_name(name).unwrap_or_else(|| panic!("no message {name}"))
}

/// A message with every field set to a deterministic, non-default value; `variant` picks
/// another set of values (0 or 1) so two entries differ.
pub fn populate(d: &MessageDescriptor, variant: u32) -> DynamicMessage {
    populate_depth(d, variant, 0)
}

fn populate_depth(d: &MessageDescriptor, v: u32, depth: u32) -> DynamicMessage {
    assert!(depth < 10, "message nesting too deep at {}", d.name());
    let mut m = DynamicMessage::new(d.clone());
    for f in d.fields() {
        if f.name().starts_with("rcr_") {
            continue; // rcr extension fields: crit does not know them (their round trip is tested by rcr's own tests)
        }
        let n = f.number();
        if n >= 1000 {
            continue; // rcr's own extension fields: crit knows nothing of them
        }
        let recursive = matches!(f.kind(), PKind::Message(_)) && f.cardinality() != Cardinality::Required;
        if recursive && depth >= 3 {
            continue; // cgroup_dir_entry nests itself
        }
        let ipadd = matches!(f.name(), "src_addr" | "dst_addr" | "local" | "remote" | "rd_prefix" | "relay_prefix");
        let one = |i: u32| -> Value {
            let k = n + i + v;
            match f.kind() {
                PKind::Uint32 | PKind::Fixed32 => Value::U32(k.wrapping_mul(0x0101_0103) ^ (v << 31)),
                PKind::Uint64 | PKind::Fixed64 => Value::U64(0x7f00_0000_0000 + u64::from(k) * 0x1001),
                PKind::Int32 | PKind::Sint32 | PKind::Sfixed32 => Value::I32(-(k as i32) * 1000 - 1),
                PKind::Int64 | PKind::Sint64 | PKind::Sfixed64 => Value::I64(-i64::from(k) * 1_000_000_000_007),
                PKind::Bool => Value::Bool((k % 2) == 1),
                PKind::String => Value::String(format!("{}-{k}-ü/x", f.name())),
                PKind::Bytes => {
                    let mut b: Vec<u8> = (0..(60 + k % 30)).map(|j| (j * 37 + k) as u8).collect();
                    b[0] = 0; // an abstract unix socket name starts with NUL
                    b[3] = b'=';
                    Value::Bytes(b.into())
                }
                PKind::Enum(e) => {
                    let vals: Vec<i32> = e.values().map(|x| x.number()).collect();
                    Value::EnumNumber(if (k % 2) == 1 { vals[vals.len() - 1] } else { vals[0] })
                }
                PKind::Message(md) => Value::Message(populate_depth(&md, v, depth + 1)),
                PKind::Float => Value::F32(k as f32 + 0.5),
                PKind::Double => Value::F64(f64::from(k) + 0.25),
            }
        };
        if f.is_list() {
            let count = if ipadd && v == 1 {
                1
            } else if ipadd {
                4
            } else {
                2
            };
            m.set_field(&f, Value::List((0..count).map(one).collect()));
        } else {
            m.set_field(&f, one(0));
        }
    }
    m
}

pub fn set_u(m: &mut DynamicMessage, field: &str, val: u64) {
    let f = m.descriptor().get_field_by_name(field).unwrap_or_else(|| panic!("no field {field}"));
    let value = match f.kind() {
        PKind::Uint32 => Value::U32(u32::try_from(val).unwrap()),
        PKind::Bool => Value::Bool(val != 0),
        _ => Value::U64(val),
    };
    m.set_field(&f, value);
}

fn put(w: &mut ImgWriter<Vec<u8>>, m: &DynamicMessage) {
    w.write_entry_bytes(&prost::Message::encode_to_vec(m)).unwrap();
}

pub fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

/// An image of `kind` with fully populated entries (and consistent raw payloads).
/// `alt` selects the alternative layout where there is one (ghost-file with chunks).
pub fn generic_image(kind: Kind, alt: bool) -> Vec<u8> {
    let mut w = ImgWriter::new(Vec::new(), "generic", kind).unwrap();
    let msg = kind.message_name();
    match kind.layout() {
        Layout::Raw => w.write_raw(&payload(4096, 1)).unwrap(),
        Layout::Plain => {
            for v in 0..2 {
                put(&mut w, &populate(&desc(msg), v));
            }
        }
        Layout::Pagemap => {
            put(&mut w, &populate(&desc("pagemap_head"), 0));
            for v in 0..2 {
                let mut e = populate(&desc(msg), v);
                e.clear_field_by_name("nr_pages_u64"); // rcr-only field, unknown to crit
                put(&mut w, &e);
            }
        }
        Layout::GhostFile => {
            let mut head = populate(&desc(msg), 0);
            set_u(&mut head, "chunks", u64::from(alt));
            put(&mut w, &head);
            if alt {
                for v in 0..2u8 {
                    let mut c = populate(&desc("ghost_chunk_entry"), u32::from(v));
                    set_u(&mut c, "len", 100 + u64::from(v));
                    put(&mut w, &c);
                    w.write_raw(&payload(100 + usize::from(v), v)).unwrap();
                }
            } else {
                w.write_raw(&payload(200, 9)).unwrap();
            }
        }
        Layout::PayloadField(field) => {
            for v in 0..2u8 {
                let mut e = populate(&desc(msg), u32::from(v));
                set_u(&mut e, field, 70 + u64::from(v));
                put(&mut w, &e);
                w.write_raw(&payload(70 + usize::from(v), v)).unwrap();
            }
        }
        Layout::TcpStream => {
            let mut e = populate(&desc(msg), 0);
            set_u(&mut e, "inq_len", 10);
            set_u(&mut e, "outq_len", 90);
            put(&mut w, &e);
            w.write_raw(&payload(100, 3)).unwrap();
        }
        Layout::BpfmapData => {
            let mut e = populate(&desc(msg), 0);
            set_u(&mut e, "keys_bytes", 8);
            set_u(&mut e, "values_bytes", 16);
            put(&mut w, &e);
            w.write_raw(&payload(24, 3)).unwrap();
        }
        Layout::IpcShm => {
            let mut e = populate(&desc(msg), 0);
            set_u(&mut e, "size", 5);
            put(&mut w, &e);
            w.write_raw(&[1, 2, 3, 4, 5, 0, 0, 0]).unwrap();
        }
        Layout::IpcSem => {
            let mut e = populate(&desc(msg), 0);
            set_u(&mut e, "nsems", 3);
            put(&mut w, &e);
            w.write_raw(&[1, 0, 2, 0, 0xff, 0xff, 0, 0]).unwrap();
        }
        Layout::IpcMsg => {
            let mut e = populate(&desc(msg), 0);
            set_u(&mut e, "qnum", 2);
            put(&mut w, &e);
            for v in 0..2u8 {
                let mut m = populate(&desc("ipc_msg"), u32::from(v));
                set_u(&mut m, "msize", 5 + u64::from(v));
                put(&mut w, &m);
                let mut data = payload(5 + usize::from(v), v);
                data.resize(8, 0);
                w.write_raw(&data).unwrap();
            }
        }
    }
    w.into_inner().unwrap()
}

/// Kinds crit 3.17 has a handler for.
pub fn crit_knows(kind: Kind) -> bool {
    !matches!(kind, Kind::Pages | Kind::Signal | Kind::BinfmtMisc)
}

/// Kinds whose `crit encode` is broken in crit 3.17 under Python 3 (it base64-decodes a str).
pub fn crit_encode_broken(kind: Kind) -> bool {
    matches!(kind, Kind::IpcnsShm | Kind::BpfmapData)
}

// ---------------------------------------------------------------------------------------
// crit

/// The crit executable, or None (then tests skip with a notice, or fail when CI=true).
pub fn crit() -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|p| p.join("crit")).find(|p| p.is_file()));
    if found.is_none() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("crit is not installed but CI=true: install criu's crit (apt-get install criu)");
        }
        // Written to the stderr handle, not eprintln!, so the test harness does not hide it.
        let _ = writeln!(std::io::stderr(), "NOTICE: crit not found in PATH; skipping the crit cross-check");
    }
    found
}

/// The Python interpreter crit runs with (its shebang), to run crit's pycriu in batch.
pub fn crit_python(crit: &Path) -> String {
    let text = std::fs::read_to_string(crit).unwrap_or_default();
    text.lines()
        .next()
        .and_then(|l| l.strip_prefix("#!"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "python3".to_string())
}

/// Runs a command with a deadline; kills it (by its pid) if it overruns.
pub fn run_with_timeout(cmd: &mut Command, stdin: &[u8], timeout: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin).unwrap();
    drop(input);
    // Read the pipes on threads so a chatty child cannot block on a full pipe.
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut so, &mut v).ok();
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut se, &mut v).ok();
        v
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output { status, stdout: t_out.join().unwrap(), stderr: t_err.join().unwrap() }
}

/// `crit ARGS...`, which must succeed; returns stdout.
pub fn crit_run(crit: &Path, args: &[&str]) -> Vec<u8> {
    let out = run_with_timeout(Command::new(crit).args(args), b"", Duration::from_secs(60));
    assert!(out.status.success(), "crit {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// Runs crit's own decode/encode code (pycriu, called exactly as `crit decode`/`crit encode`
/// call it) over many files in one Python process. Each job is (op, input, output, pretty)
/// with op "decode" or "encode".
pub fn crit_batch(crit: &Path, jobs: &[(&str, PathBuf, PathBuf, bool)]) {
    const SCRIPT: &str = r#"
import json, sys
import pycriu
jobs = json.load(sys.stdin)
for op, src, dst, pretty in jobs:
    if op == "decode":
        with open(src, "rb") as f:
            img = pycriu.images.load(f, pretty, False)
        with open(dst, "w") as f:
            json.dump(img, f, indent=4 if pretty else None)
    else:
        with open(src) as f:
            img = json.load(f)
        with open(dst, "wb") as f:
            pycriu.images.dump(img, f)
"#;
    let list: Vec<serde_json::Value> =
        jobs.iter().map(|(op, a, b, p)| serde_json::json!([op, a, b, p])).collect();
    let stdin = serde_json::to_vec(&list).unwrap();
    let out = run_with_timeout(
        Command::new(crit_python(crit)).arg("-c").arg(SCRIPT),
        &stdin,
        Duration::from_secs(300),
    );
    assert!(out.status.success(), "pycriu batch failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// A unique scratch directory, removed on drop.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("rcr-image-test-").tempdir().unwrap()
}

// ---------------------------------------------------------------------------------------
// A realistic dump: a two-process tree (parent with two threads) and its files.

pub const ROOT: u32 = 4242;
pub const CHILD: u32 = 4250;

/// Object-safe encoding, to list differently typed entries.
pub trait EncodeDyn {
    fn bytes(&self) -> Vec<u8>;
}
impl<M: prost::Message> EncodeDyn for M {
    fn bytes(&self) -> Vec<u8> {
        self.encode_to_vec()
    }
}

fn write(dir: &Path, name: &str, kind: Kind, entries: &[&dyn EncodeDyn], raw_after: &[Option<Vec<u8>>]) {
    let mut w = ImgWriter::create(&dir.join(name), kind).unwrap();
    for (i, e) in entries.iter().enumerate() {
        w.write_entry_bytes(&e.bytes()).unwrap();
        if let Some(Some(raw)) = raw_after.get(i) {
            w.write_raw(raw).unwrap();
        }
    }
    w.finish().unwrap();
}

fn fown() -> pb::FownEntry {
    pb::FownEntry { uid: 1000, euid: 1000, signum: 0, pid_type: 0, pid: 0 }
}

fn gpregs() -> pb::UserX86RegsEntry {
    pb::UserX86RegsEntry {
        r15: 1,
        r14: 2,
        r13: 3,
        r12: 4,
        bp: 0x7ffd_1234_5670,
        bx: 6,
        r11: 0x246,
        r10: 8,
        r9: 9,
        r8: 10,
        ax: u64::MAX - 37,
        cx: 0x7f12_3456_789a,
        dx: 13,
        si: 14,
        di: 15,
        orig_ax: 230,
        ip: 0x7f12_3456_7000,
        cs: 0x33,
        flags: 0x246,
        sp: 0x7ffd_1234_5000,
        ss: 0x2b,
        fs_base: 0x7f12_3400_0740,
        gs_base: 0,
        ds: 0,
        es: 0,
        fs: 0,
        gs: 0,
        mode: Some(pb::UserX86RegsMode::Native as i32),
    }
}

fn thread_info() -> pb::ThreadInfoX86 {
    pb::ThreadInfoX86 {
        clear_tid_addr: 0x7f12_3400_0a10,
        gpregs: gpregs(),
        fpregs: pb::UserX86FpregsEntry {
            cwd: 0x37f,
            swd: 0,
            twd: 0,
            fop: 0,
            rip: 0,
            rdp: 0,
            mxcsr: 0x1f80,
            mxcsr_mask: 0xffff,
            st_space: (0..32).collect(),
            xmm_space: (0..64).map(|i| i * 0x0101_0101).collect(),
            padding: vec![0; 24],
            xsave: Some(pb::UserX86XsaveEntry {
                xstate_bv: 0x2e7,
                ymmh_space: (0..64).collect(),
                bndreg_state: vec![],
                bndcsr_state: vec![],
                opmask_reg: vec![0; 8],
                zmm_upper: (0..32).map(|i| i << 40).collect(),
                hi16_zmm: vec![7; 128],
                pkru: vec![0x5555_5554],
            }),
        },
        tls: (0..3)
            .map(|i| pb::UserDescT {
                entry_number: 12 + i,
                read_exec_only: true,
                seg_not_present: true,
                ..Default::default()
            })
            .collect(),
    }
}

fn creds() -> pb::CredsEntry {
    pb::CredsEntry {
        uid: 1000,
        gid: 1000,
        euid: 1000,
        egid: 1000,
        suid: 1000,
        sgid: 1000,
        fsuid: 1000,
        fsgid: 1000,
        cap_inh: vec![0, 0],
        cap_prm: vec![0, 0],
        cap_eff: vec![0, 0],
        cap_bnd: vec![u32::MAX, 0x1ff],
        secbits: 0,
        groups: vec![4, 24, 27, 1000],
        ..Default::default()
    }
}

fn core(pid: u32, comm: &str, with_task: bool) -> pb::CoreEntry {
    let sigactions = (1..=64u64)
        .map(|i| pb::SaEntry {
            sigaction: if i == 10 { 0x5555_5555_1234 } else { 0 },
            flags: if i == 10 { 0x0400_0004 } else { 0 },
            restorer: if i == 10 { 0x7f12_3404_2520 } else { 0 },
            mask: 0,
            mask_extended: Some(0),
            ..Default::default()
        })
        .collect();
    let tc = pb::TaskCoreEntry {
        task_state: 1,
        exit_code: 0,
        personality: 0,
        flags: 0x0040_0100,
        blk_sigset: 0,
        comm: comm.to_string(),
        timers: Some(pb::TaskTimersEntry {
            real: pb::ItimerEntry { isec: 1, iusec: 0, vsec: 0, vusec: 500_000 },
            virt: pb::ItimerEntry::default(),
            prof: pb::ItimerEntry::default(),
            posix: vec![pb::PosixTimerEntry {
                it_id: 0,
                clock_id: 1,
                si_signo: 14,
                it_sigev_notify: 0,
                sival_ptr: 0,
                overrun: 0,
                vsec: 5,
                ..Default::default()
            }],
        }),
        rlimits: Some(pb::TaskRlimitsEntry {
            rlimits: (0..16u64)
                .map(|i| pb::RlimitEntry { cur: if i == 7 { 1024 } else { u64::MAX }, max: u64::MAX - i })
                .collect(),
        }),
        cg_set: Some(1),
        signals_s: Some(pb::SignalQueueEntry { signals: vec![] }),
        loginuid: Some(u32::MAX),
        oom_score_adj: Some(-17),
        sigactions: if with_task { sigactions } else { vec![] },
        child_subreaper: Some(false),
        blk_sigset_extended: Some(0),
        ..Default::default()
    };
    pb::CoreEntry {
        mtype: pb::core_entry::March::X8664 as i32,
        thread_info: Some(thread_info()),
        tc: with_task.then_some(tc),
        ids: None,
        thread_core: Some(pb::ThreadCoreEntry {
            futex_rla: 0x7f12_3400_0a20,
            futex_rla_len: 24,
            sched_nice: Some(-5),
            sched_policy: Some(0),
            sched_prio: None,
            blk_sigset: Some(0x1_0000),
            sas: Some(pb::ThreadSasEntry { ss_sp: 0, ss_size: 0, ss_flags: 2 }),
            pdeath_sig: Some(0),
            signals_p: Some(pb::SignalQueueEntry {
                signals: vec![pb::SiginfoEntry { siginfo: vec![10, 0, 0, 0, 0, 0, 0, 0, 0xd2, 0x04] }],
            }),
            creds: Some(creds()),
            seccomp_mode: Some(pb::SeccompMode::Disabled as i32),
            seccomp_filter: None,
            comm: Some(format!("{comm}-{pid}")),
            blk_sigset_extended: Some(0),
            rseq_entry: Some(pb::RseqEntry {
                rseq_abi_pointer: 0x7f12_3400_0fe0,
                rseq_abi_size: 32,
                signature: 0x5305_3053,
                rseq_cs_pointer: None,
            }),
            // rcr extension: crit knows nothing of it, so the crit cross-check leaves it out.
            rcr_no_new_privs: None,
        }),
        ..Default::default()
    }
}

fn vma(start: u64, end: u64, prot: u32, flags: u32, status: u32, shmid: u64) -> pb::VmaEntry {
    pb::VmaEntry { start, end, pgoff: 0, shmid, prot, flags, status, fd: -1, ..Default::default() }
}

fn sk_opts() -> pb::SkOptsEntry {
    pb::SkOptsEntry {
        so_sndbuf: 212_992,
        so_rcvbuf: 212_992,
        reuseaddr: Some(true),
        so_priority: Some(0),
        so_rcvlowat: Some(1),
        so_mark: Some(0),
        so_passcred: Some(false),
        so_passsec: Some(false),
        so_dontroute: Some(false),
        so_no_check: Some(false),
        so_reuseport: Some(false),
        so_broadcast: Some(false),
        so_keepalive: Some(false),
        ..Default::default()
    }
}

fn file(id: u32, ty: pb::FdTypes) -> pb::FileEntry {
    pb::FileEntry { r#type: ty as i32, id, ..Default::default() }
}

fn files() -> Vec<pb::FileEntry> {
    vec![
        pb::FileEntry {
            reg: Some(pb::RegFileEntry {
                id: 1,
                flags: 0o100000,
                pos: 0,
                fown: fown(),
                name: "/usr/bin/server".into(),
                mnt_id: Some(27),
                size: Some(14_328),
                mode: Some(0o100755),
                build_id: vec![0xdead_beef, 1, 2, 3, 4],
                ..Default::default()
            }),
            ..file(1, pb::FdTypes::Reg)
        },
        pb::FileEntry {
            reg: Some(pb::RegFileEntry {
                id: 2,
                flags: 0o2102,
                pos: 5,
                fown: fown(),
                name: "/tmp/deleted.log".into(),
                mnt_id: Some(27),
                size: Some(5),
                mode: Some(0o100644),
                ..Default::default()
            }),
            ..file(2, pb::FdTypes::Reg)
        },
        pb::FileEntry {
            pipe: Some(pb::PipeEntry { id: 3, pipe_id: 77_001, flags: 0, fown: fown() }),
            ..file(3, pb::FdTypes::Pipe)
        },
        pb::FileEntry {
            pipe: Some(pb::PipeEntry { id: 4, pipe_id: 77_001, flags: 1, fown: fown() }),
            ..file(4, pb::FdTypes::Pipe)
        },
        pb::FileEntry {
            fifo: Some(pb::FifoEntry { id: 5, pipe_id: 77_005, regf_id: Some(6) }),
            ..file(5, pb::FdTypes::Fifo)
        },
        pb::FileEntry {
            usk: Some(pb::UnixSkEntry {
                id: 7,
                ino: 88_001,
                r#type: 1,
                state: 1,
                flags: 0o2,
                uflags: 0,
                backlog: 0,
                peer: 8,
                fown: fown(),
                opts: sk_opts(),
                name: b"\0abstract-sock".to_vec(),
                mnt_id: Some(-1),
                ..Default::default()
            }),
            ..file(7, pb::FdTypes::Unixsk)
        },
        pb::FileEntry {
            usk: Some(pb::UnixSkEntry {
                id: 8,
                ino: 88_002,
                r#type: 1,
                state: 10,
                flags: 0o2,
                backlog: 128,
                fown: fown(),
                opts: sk_opts(),
                name: b"/run/server.sock".to_vec(),
                file_perms: Some(pb::FilePermsEntry { mode: 0o777, uid: 1000, gid: 1000 }),
                ..Default::default()
            }),
            ..file(8, pb::FdTypes::Unixsk)
        },
        pb::FileEntry {
            isk: Some(pb::InetSkEntry {
                id: 9,
                ino: 88_003,
                family: 10,
                r#type: 1,
                proto: 6,
                state: 10,
                src_port: 8080,
                dst_port: 0,
                flags: 0o2,
                backlog: 128,
                src_addr: vec![0, 0, 0xffff_0000, 0x0100_007f],
                dst_addr: vec![0, 0, 0, 0],
                fown: fown(),
                opts: sk_opts(),
                v6only: Some(false),
                ..Default::default()
            }),
            ..file(9, pb::FdTypes::Inetsk)
        },
        pb::FileEntry {
            efd: Some(pb::EventfdFileEntry { id: 10, flags: 0o2004002, fown: fown(), counter: 42, rcr_semaphore: None }),
            ..file(10, pb::FdTypes::Eventfd)
        },
        pb::FileEntry {
            epfd: Some(pb::EventpollFileEntry {
                id: 11,
                flags: 0o2000002,
                fown: fown(),
                tfd: vec![pb::EventpollTfdEntry {
                    id: 11,
                    tfd: 10,
                    events: 1,
                    data: 10,
                    dev: Some(14),
                    inode: Some(1234),
                    pos: Some(0),
                }],
            }),
            ..file(11, pb::FdTypes::Eventpoll)
        },
        pb::FileEntry {
            tfd: Some(pb::TimerfdEntry {
                id: 12,
                flags: 0o2004002,
                fown: fown(),
                clockid: 1,
                ticks: 3,
                settime_flags: 0,
                vsec: 1,
                vnsec: 0,
                isec: 1,
                insec: 500_000_000,
            }),
            ..file(12, pb::FdTypes::Timerfd)
        },
        pb::FileEntry {
            sgfd: Some(pb::SignalfdEntry { id: 13, flags: 0o2004002, fown: fown(), sigmask: 1 << 16 }),
            ..file(13, pb::FdTypes::Signalfd)
        },
        pb::FileEntry {
            memfd: Some(pb::MemfdFileEntry { id: 14, flags: 0o2, pos: 0, fown: fown(), inode_id: 1 }),
            ..file(14, pb::FdTypes::Memfd)
        },
        pb::FileEntry {
            ify: Some(pb::InotifyFileEntry {
                id: 15,
                flags: 0o2004000,
                fown: fown(),
                wd: vec![pb::InotifyWdEntry {
                    id: 15,
                    i_ino: 2,
                    mask: 0x100,
                    ignored_mask: 0,
                    s_dev: 0x0080_0001,
                    wd: 1,
                    f_handle: pb::FhEntry { bytes: 8, r#type: 1, handle: vec![2, 0, 0x1234, 0], ..Default::default() },
                }],
            }),
            ..file(15, pb::FdTypes::Inotify)
        },
        pb::FileEntry {
            tty: Some(pb::TtyFileEntry { id: 16, tty_info_id: 1, flags: 0o2, fown: fown(), regf_id: None }),
            ..file(16, pb::FdTypes::Tty)
        },
    ]
}

/// Writes into `dir` the image set CRIU writes for a two-threaded process with a child,
/// pipes, unix sockets, eventfd, timerfd, memfd and a deleted open file. Returns the names.
pub fn write_realistic(dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    let mut w = |name: String, kind: Kind, entries: &[&dyn EncodeDyn], raw: &[Option<Vec<u8>>]| {
        write(dir, &name, kind, entries, raw);
        names.push(name);
    };
    let ids = pb::TaskKobjIdsEntry {
        vm_id: 1,
        files_id: 2,
        fs_id: 3,
        sighand_id: 4,
        pid_ns_id: Some(5),
        net_ns_id: Some(6),
        ipc_ns_id: Some(7),
        uts_ns_id: Some(8),
        mnt_ns_id: Some(9),
        user_ns_id: Some(10),
        cgroup_ns_id: Some(11),
        time_ns_id: Some(12),
    };
    let inventory = pb::InventoryEntry {
        img_version: rcr_engine::image::IMG_VERSION,
        fdinfo_per_id: Some(true),
        root_ids: Some(ids),
        ns_per_id: Some(true),
        root_cg_set: Some(1),
        lsmtype: Some(pb::Lsmtype::NoLsm as i32),
        dump_uptime: Some(123_456_789),
        pre_dump_mode: None,
        tcp_close: Some(false),
        network_lock_method: Some(1),
        rcr_plugins: Vec::new(),
    };
    w("inventory.img".into(), Kind::Inventory, &[&inventory], &[]);
    w(
        "pstree.img".into(),
        Kind::Pstree,
        &[
            &pb::PstreeEntry { pid: ROOT, ppid: 0, pgid: ROOT, sid: 1, threads: vec![ROOT, ROOT + 1] },
            &pb::PstreeEntry { pid: CHILD, ppid: ROOT, pgid: ROOT, sid: 1, threads: vec![CHILD] },
        ],
        &[],
    );
    w(Kind::Core.file_name(ROOT.into()), Kind::Core, &[&core(ROOT, "server", true)], &[]);
    w(Kind::Core.file_name((ROOT + 1).into()), Kind::Core, &[&core(ROOT + 1, "server", false)], &[]);
    w(Kind::Core.file_name(CHILD.into()), Kind::Core, &[&core(CHILD, "worker", true)], &[]);
    w(Kind::Ids.file_name(ROOT.into()), Kind::Ids, &[&ids], &[]);
    let mm = pb::MmEntry {
        mm_start_code: 0x5555_5555_4000,
        mm_end_code: 0x5555_5555_5000,
        mm_start_data: 0x5555_5555_7000,
        mm_end_data: 0x5555_5555_8000,
        mm_start_stack: 0x7ffd_1234_6000,
        mm_start_brk: 0x5555_5556_9000,
        mm_brk: 0x5555_5558_a000,
        mm_arg_start: 0x7ffd_1234_6f00,
        mm_arg_end: 0x7ffd_1234_6f20,
        mm_env_start: 0x7ffd_1234_6f20,
        mm_env_end: 0x7ffd_1234_7fe0,
        exe_file_id: 1,
        mm_saved_auxv: vec![33, 0x7ffd_1238_0000, 16, 0x178b_fbff, 6, 4096, 0, 0],
        vmas: vec![
            vma(0x5555_5555_4000, 0x5555_5555_5000, 5, 2, 0x41, 1),
            vma(0x5555_5556_9000, 0x5555_5558_a000, 3, 0x22, 0x221, 0),
            vma(0x7f12_3400_0000, 0x7f12_3401_0000, 3, 0x1, 0x81, 7),
            vma(0x7ffd_1236_7000, 0x7ffd_1238_8000, 3, 0x122, 0x223, 0),
            vma(0x7ffd_1238_e000, 0x7ffd_1239_0000, 5, 0x22, 0x209, 0),
        ],
        dumpable: Some(1),
        aios: vec![],
        thp_disabled: Some(false),
    };
    w(Kind::Mm.file_name(ROOT.into()), Kind::Mm, &[&mm], &[]);
    w(
        Kind::Pagemap.file_name(ROOT.into()),
        Kind::Pagemap,
        &[
            &pb::PagemapHead { pages_id: 1 },
            &pagemap::entry(0x5555_5556_9000, 3, pagemap::PE_PRESENT),
            &pagemap::entry(0x5555_5557_0000, 16, pagemap::PE_LAZY),
            &pagemap::entry(0x7ffd_1238_6000, 2, pagemap::PE_PRESENT),
        ],
        &[],
    );
    let files = files();
    let files: Vec<&dyn EncodeDyn> = files.iter().map(|f| f as &dyn EncodeDyn).collect();
    w("files.img".into(), Kind::Files, &files, &[]);
    let fds: Vec<pb::FdinfoEntry> = [
        (0, 16, 0),
        (1, 16, 0),
        (2, 16, 0),
        (3, 3, 1),
        (4, 4, 1),
        (5, 7, 0),
        (6, 9, 1),
        (7, 10, 1),
        (8, 11, 1),
        (9, 12, 1),
        (10, 14, 0),
        (11, 2, 1),
        (12, 15, 1),
        (13, 13, 1),
        (14, 5, 0),
    ]
    .iter()
    .map(|&(fd, id, cloexec)| pb::FdinfoEntry {
        id,
        flags: cloexec,
        r#type: pb::FdTypes::Reg as i32,
        fd,
        xattr_security_selinux: None,
    })
    .collect();
    let fds: Vec<&dyn EncodeDyn> = fds.iter().map(|f| f as &dyn EncodeDyn).collect();
    w(Kind::Fdinfo.file_name(2), Kind::Fdinfo, &fds, &[]);
    w(Kind::Fs.file_name(ROOT.into()), Kind::Fs, &[&pb::FsEntry { cwd_id: 1, root_id: 2, umask: Some(0o22) }], &[]);
    w(
        "pipes-data.img".into(),
        Kind::PipesData,
        &[
            &pb::PipeDataEntry { pipe_id: 77_001, bytes: 100, size: Some(65_536) },
            &pb::PipeDataEntry { pipe_id: 77_002, bytes: 0, size: None },
        ],
        &[Some(payload(100, 1)), None],
    );
    w(
        "fifo-data.img".into(),
        Kind::FifoData,
        &[&pb::PipeDataEntry { pipe_id: 77_005, bytes: 3, size: Some(4096) }],
        &[Some(b"abc".to_vec())],
    );
    w(
        "sk-queues.img".into(),
        Kind::SkQueues,
        &[&pb::SkPacketEntry { id_for: 7, length: 11, scm: vec![], ..Default::default() }, &pb::SkPacketEntry { id_for: 8, length: 200, scm: vec![], ..Default::default() }],
        &[Some(b"hello world".to_vec()), Some(payload(200, 5))],
    );
    let ghost = pb::GhostFileEntry {
        uid: 1000,
        gid: 1000,
        mode: 0o100644,
        dev: Some(0x0080_0001),
        ino: Some(99),
        rdev: Some(0),
        atim: Some(pb::Timeval { tv_sec: 1_700_000_000, tv_usec: 5 }),
        mtim: Some(pb::Timeval { tv_sec: 1_700_000_001, tv_usec: 6 }),
        chunks: None,
        size: Some(5),
        symlnk_target: None,
    };
    w(Kind::GhostFile.file_name(26), Kind::GhostFile, &[&ghost], &[Some(b"hello".to_vec())]);
    w(
        Kind::GhostFile.file_name(27),
        Kind::GhostFile,
        &[
            &pb::GhostFileEntry { uid: 0, gid: 0, mode: 0o100600, chunks: Some(true), size: Some(1 << 20), ..Default::default() },
            &pb::GhostChunkEntry { len: 4, off: 0 },
            &pb::GhostChunkEntry { len: 3, off: 4096 },
        ],
        &[None, Some(b"\x7fELF".to_vec()), Some(b"end".to_vec())],
    );
    w(
        "remap-fpath.img".into(),
        Kind::RemapFpath,
        &[&pb::RemapFilePathEntry { orig_id: 2, remap_id: 26, remap_type: Some(pb::RemapType::Ghost as i32) }],
        &[],
    );
    w(
        "memfd.img".into(),
        Kind::MemfdInode,
        &[&pb::MemfdInodeEntry {
            name: "memfd:shared-state".into(),
            uid: 1000,
            gid: 1000,
            size: 8192,
            shmid: 7,
            seals: 0x5,
            inode_id: 1,
            hugetlb_flag: None,
        }],
        &[],
    );
    w(
        "seccomp.img".into(),
        Kind::Seccomp,
        &[&pb::SeccompEntry {
            seccomp_filters: vec![pb::SeccompFilter { filter: payload(64, 2), prev: None, flags: Some(0) }],
        }],
        &[],
    );
    w(
        Kind::Timens.file_name(12),
        Kind::Timens,
        &[&pb::TimensEntry {
            monotonic: pb::Timespec { tv_sec: 1000, tv_nsec: 5 },
            boottime: pb::Timespec { tv_sec: 2000, tv_nsec: 6 },
        }],
        &[],
    );
    let tty = pb::TtyInfoEntry {
        id: 1,
        r#type: pb::TtyType::Pty as i32,
        locked: false,
        exclusive: false,
        packet_mode: false,
        sid: 1,
        pgrp: ROOT,
        rdev: 0x8800_0003,
        termios: Some(pb::TermiosEntry {
            c_iflag: 0x500,
            c_oflag: 5,
            c_cflag: 0xbf,
            c_lflag: 0x8a3b,
            c_line: 0,
            c_ispeed: 38_400,
            c_ospeed: 38_400,
            c_cc: (0..19).collect(),
        }),
        winsize: Some(pb::WinsizeEntry { ws_row: 24, ws_col: 80, ws_xpixel: 0, ws_ypixel: 0 }),
        pty: Some(pb::TtyPtyEntry { index: 3 }),
        uid: Some(1000),
        gid: Some(5),
        ..Default::default()
    };
    w("tty-info.img".into(), Kind::TtyInfo, &[&tty], &[]);
    let stats = pb::StatsEntry {
        dump: Some(pb::DumpStatsEntry {
            freezing_time: 1000,
            frozen_time: 20_000,
            memdump_time: 3000,
            memwrite_time: 400,
            pages_scanned: 100,
            pages_skipped_parent: 0,
            pages_written: 19,
            pages_lazy: 16,
            page_pipes: Some(1),
            page_pipe_bufs: Some(2),
            ..Default::default()
        }),
        restore: None,
    };
    w(Kind::stats_file_name(false).into(), Kind::Stats, &[&stats], &[]);
    let tcp = pb::TcpStreamEntry {
        inq_len: 4,
        outq_len: 2,
        opt_mask: 7,
        snd_wscale: 7,
        mss_clamp: 1460,
        rcv_wscale: Some(7),
        timestamp: Some(1),
        cork: Some(false),
        nodelay: Some(true),
        unsq_len: Some(0),
        snd_wnd: Some(65_535),
        rcv_wnd: Some(65_535),
        inq_seq: 1000,
        outq_seq: 2000,
        ..Default::default()
    };
    w(Kind::TcpStream.file_name(0x1a), Kind::TcpStream, &[&tcp], &[Some(b"inq!ou".to_vec())]);
    w(Kind::Rlimit.file_name(ROOT.into()), Kind::Rlimit, &[&pb::RlimitEntry { cur: 1024, max: 4096 }], &[]);
    w(Kind::Creds.file_name(ROOT.into()), Kind::Creds, &[&creds()], &[]);
    let cgroup = pb::CgroupEntry {
        sets: vec![pb::CgSetEntry {
            id: 1,
            ctls: vec![pb::CgMemberEntry { name: "name=systemd".into(), path: "/user.slice".into(), cgns_prefix: None }],
        }],
        controllers: vec![],
    };
    w("cgroup.img".into(), Kind::Cgroup, &[&cgroup], &[]);
    w(
        Kind::Utsns.file_name(8),
        Kind::Utsns,
        &[&pb::UtsnsEntry { nodename: "host".into(), domainname: "(none)".into() }],
        &[],
    );
    // pages-1.img: the PE_PRESENT ranges of the pagemap (3 + 2 pages), raw.
    let mut pages = ImgWriter::create(&dir.join(Kind::Pages.file_name(1)), Kind::Pages).unwrap();
    pages.write_raw(&payload(5 * pagemap::PAGE_SIZE as usize, 7)).unwrap();
    pages.finish().unwrap();
    names.push(Kind::Pages.file_name(1));
    names
}
