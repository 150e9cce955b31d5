//! The image kinds and their file names, in one table: magic numbers (CRIU's
//! criu/include/magic.h), crit names, entry message, layout and file-name patterns (CRIU's
//! criu/image-desc.c) of each. [`Kind`] is what a file holds, [`ImageName`] which file it is.

/// CRIU's "common" head magic, written before the image's own magic (images v1.1).
pub const IMG_COMMON_MAGIC: u32 = 0x5456_4319;
/// CRIU's "service" head magic, used instead of the common one by stats and irmap-cache.
pub const IMG_SERVICE_MAGIC: u32 = 0x5510_5940;
/// The `img_version` rcr writes in inventory.img (CRIU's CRTOOLS_IMAGES_V1_1).
pub const IMG_VERSION: u32 = 2;

/// How the entries of an image are laid out after the magic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Only length-prefixed entries of the kind's message.
    Plain,
    /// Raw bytes only, no magic (pages-N.img).
    Raw,
    /// A `pagemap_head` entry, then `pagemap_entry` entries.
    Pagemap,
    /// A `ghost_file_entry`; then either the raw file contents up to EOF or, when its
    /// `chunks` field is true, `ghost_chunk_entry` entries each followed by `len` raw bytes.
    GhostFile,
    /// Each entry is followed by as many raw bytes as its field `.0` (a u32/u64) says.
    PayloadField(&'static str),
    /// tcp_stream_entry followed by `inq_len` + `outq_len` raw bytes.
    TcpStream,
    /// bpfmap_data_entry followed by `keys_bytes` + `values_bytes` raw bytes.
    BpfmapData,
    /// ipc_shm_entry followed by `size` bytes padded to 4.
    IpcShm,
    /// ipc_sem_entry followed by `nsems` u16 values padded to 8 bytes.
    IpcSem,
    /// ipc_msg_entry followed by `qnum` (ipc_msg entry + `msize` bytes padded to 8).
    IpcMsg,
}

/// `Some(id)` for a name with an id, `None` for one without.
macro_rules! id_of {
    () => {
        None
    };
    ($id:ident) => {
        Some(u64::from($id))
    };
}

/// Generates [`Kind`] from the table rows and [`ImageName`] from the rows and the further names
/// after the `;` (a second file-name pattern of a kind): one table, so a kind's magic, message,
/// layout and file name cannot drift apart.
macro_rules! kinds {
    (
        $( $(#[$doc:meta])* $v:ident $( ($id:ident : $t:ty) )? = ($crit:literal, $magic:literal, $msg:literal, $file:literal, $layout:expr), )*
        ;
        $( $(#[$xdoc:meta])* $xv:ident $( ($xid:ident : $xt:ty) )? : $xkind:ident = $xfile:literal, )*
    ) => {
        /// One kind of image file.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Kind {
            $( $(#[$doc])* $v, )*
        }

        impl Kind {
            /// Every kind, in table order.
            pub const ALL: &'static [Kind] = &[ $( Kind::$v, )* ];

            /// The image's own magic number (0 for raw images, which have none).
            pub fn magic(self) -> u32 {
                match self { $( Kind::$v => $magic, )* }
            }

            /// The name crit uses in `"magic"` (e.g. "CORE").
            pub fn crit_name(self) -> &'static str {
                match self { $( Kind::$v => $crit, )* }
            }

            /// Protobuf name of the entry message ("" for raw images). For pagemap it is the
            /// message of the entries after the head, for ghost-file of the first entry.
            pub fn message_name(self) -> &'static str {
                match self { $( Kind::$v => $msg, )* }
            }

            /// How entries are laid out in the file.
            pub fn layout(self) -> Layout {
                match self { $( Kind::$v => $layout, )* }
            }
        }

        /// The name of one image file in an images directory: which image it is and, for those
        /// kept per task or per object, whose. [`ImageName::file_name`] gives the file name,
        /// [`ImageName::kind`] the kind (magic, message, layout); every image file name rcr reads
        /// or writes is made here.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ImageName {
            $(
                #[doc = concat!("`", $file, "`", $( " (`{}`: the ", stringify!($id), ")", )? ".")]
                $v $( ($t) )?,
            )*
            $(
                #[doc = concat!("`", $xfile, "`", $( " (`{}`: the ", stringify!($xid), ")", )? ".")]
                $(#[$xdoc])*
                $xv $( ($xt) )?,
            )*
        }

        impl ImageName {
            /// One name of every pattern (ids 0), for [`ImageName::parse`].
            const PATTERNS: &'static [ImageName] = &[
                $( ImageName::$v $( (<$t>::MIN) )?, )*
                $( ImageName::$xv $( (<$xt>::MIN) )?, )*
            ];

            /// The kind of image the file holds.
            pub fn kind(self) -> Kind {
                match self {
                    $( ImageName::$v { .. } => Kind::$v, )*
                    $( ImageName::$xv { .. } => Kind::$xkind, )*
                }
            }

            /// The id in the name (pid, files id, pages id, ...), None for names without one.
            pub fn id(self) -> Option<u64> {
                match self {
                    $( ImageName::$v $( ($id) )? => id_of!($( $id )?), )*
                    $( ImageName::$xv $( ($xid) )? => id_of!($( $xid )?), )*
                }
            }

            /// The file-name pattern: `{}` stands for the id.
            pub fn pattern(self) -> &'static str {
                match self {
                    $( ImageName::$v { .. } => $file, )*
                    $( ImageName::$xv { .. } => $xfile, )*
                }
            }

            /// The same name with id `id` (None if it does not fit the id's type).
            fn with_id(self, id: u64) -> Option<ImageName> {
                Some(match self {
                    $( ImageName::$v { .. } => ImageName::$v $( (<$t>::try_from(id).ok()?) )?, )*
                    $( ImageName::$xv { .. } => ImageName::$xv $( (<$xt>::try_from(id).ok()?) )?, )*
                })
            }
        }
    };
}

kinds! {
    Inventory = ("INVENTORY", 0x5831_3116, "inventory_entry", "inventory.img", Layout::Plain),
    Pstree = ("PSTREE", 0x5027_3030, "pstree_entry", "pstree.img", Layout::Plain),
    Core(tid: u32) = ("CORE", 0x5505_3847, "core_entry", "core-{}.img", Layout::Plain),
    Ids(pid: u32) = ("IDS", 0x5443_2030, "task_kobj_ids_entry", "ids-{}.img", Layout::Plain),
    Mm(pid: u32) = ("MM", 0x5749_2820, "mm_entry", "mm-{}.img", Layout::Plain),
    Vmas(pid: u32) = ("VMAS", 0x5412_3737, "vma_entry", "vmas-{}.img", Layout::Plain),
    Pagemap(pid: u32) = ("PAGEMAP", 0x5608_4025, "pagemap_entry", "pagemap-{}.img", Layout::Pagemap),
    /// Raw page contents, no magic and no entries.
    Pages(pages_id: u32) = ("PAGES", 0, "", "pages-{}.img", Layout::Raw),
    Files = ("FILES", 0x5630_3138, "file_entry", "files.img", Layout::Plain),
    Fdinfo(files_id: u32) = ("FDINFO", 0x5621_3732, "fdinfo_entry", "fdinfo-{}.img", Layout::Plain),
    Fs(pid: u32) = ("FS", 0x5140_3912, "fs_entry", "fs-{}.img", Layout::Plain),
    RegFiles = ("REG_FILES", 0x5036_3636, "reg_file_entry", "reg-files.img", Layout::Plain),
    ExtFiles = ("EXT_FILES", 0x5925_5641, "ext_file_entry", "ext-files.img", Layout::Plain),
    NsFiles = ("NS_FILES", 0x6139_4011, "ns_file_entry", "ns-files.img", Layout::Plain),
    Pipes = ("PIPES", 0x5651_3555, "pipe_entry", "pipes.img", Layout::Plain),
    PipesData = ("PIPES_DATA", 0x5645_3709, "pipe_data_entry", "pipes-data.img", Layout::PayloadField("bytes")),
    Fifo = ("FIFO", 0x5836_4939, "fifo_entry", "fifo.img", Layout::Plain),
    FifoData = ("FIFO_DATA", 0x5933_3054, "pipe_data_entry", "fifo-data.img", Layout::PayloadField("bytes")),
    Sigact(pid: u32) = ("SIGACT", 0x5534_4201, "sa_entry", "sigacts-{}.img", Layout::Plain),
    Unixsk = ("UNIXSK", 0x5437_3943, "unix_sk_entry", "unixsk.img", Layout::Plain),
    Inetsk = ("INETSK", 0x5644_3851, "inet_sk_entry", "inetsk.img", Layout::Plain),
    Packetsk = ("PACKETSK", 0x6045_4618, "packet_sock_entry", "packetsk.img", Layout::Plain),
    NetlinkSk = ("NETLINK_SK", 0x5800_5614, "netlink_sk_entry", "netlinksk.img", Layout::Plain),
    SkQueues = ("SK_QUEUES", 0x5626_4026, "sk_packet_entry", "sk-queues.img", Layout::PayloadField("length")),
    TcpStream(ino: u32) = ("TCP_STREAM", 0x5146_5506, "tcp_stream_entry", "tcp-stream-{}.img", Layout::TcpStream),
    Itimers(pid: u32) = ("ITIMERS", 0x5746_4056, "itimer_entry", "itimers-{}.img", Layout::Plain),
    PosixTimers(pid: u32) = ("POSIX_TIMERS", 0x5260_3957, "posix_timer_entry", "posix-timers-{}.img", Layout::Plain),
    Creds(tid: u32) = ("CREDS", 0x5402_3547, "creds_entry", "creds-{}.img", Layout::Plain),
    Rlimit(pid: u32) = ("RLIMIT", 0x5711_3925, "rlimit_entry", "rlimit-{}.img", Layout::Plain),
    /// Pending signals (shared: signal-s-N.img, a thread's private ones: signal-p-N.img); crit
    /// 3.17 lacks it.
    Signal(pid: u32) = ("SIGNAL", 0x5925_5647, "siginfo_entry", "signal-s-{}.img", Layout::Plain),
    Utsns(ns_id: u32) = ("UTSNS", 0x5447_3203, "utsns_entry", "utsns-{}.img", Layout::Plain),
    IpcVar(ns_id: u32) = ("IPC_VAR", 0x5311_5007, "ipc_var_entry", "ipcns-var-{}.img", Layout::Plain),
    IpcnsShm(ns_id: u32) = ("IPCNS_SHM", 0x4628_3044, "ipc_shm_entry", "ipcns-shm-{}.img", Layout::IpcShm),
    IpcnsMsg(ns_id: u32) = ("IPCNS_MSG", 0x5545_3737, "ipc_msg_entry", "ipcns-msg-{}.img", Layout::IpcMsg),
    IpcnsSem(ns_id: u32) = ("IPCNS_SEM", 0x5957_3019, "ipc_sem_entry", "ipcns-sem-{}.img", Layout::IpcSem),
    RemapFpath = ("REMAP_FPATH", 0x5913_3954, "remap_file_path_entry", "remap-fpath.img", Layout::Plain),
    GhostFile(id: u32) = ("GHOST_FILE", 0x5258_3605, "ghost_file_entry", "ghost-file-{}.img", Layout::GhostFile),
    EventfdFile = ("EVENTFD_FILE", 0x4452_3722, "eventfd_file_entry", "eventfd.img", Layout::Plain),
    EventpollFile = ("EVENTPOLL_FILE", 0x4502_3858, "eventpoll_file_entry", "eventpoll.img", Layout::Plain),
    EventpollTfd = ("EVENTPOLL_TFD", 0x4443_3746, "eventpoll_tfd_entry", "eventpoll-tfd.img", Layout::Plain),
    Signalfd = ("SIGNALFD", 0x5732_3820, "signalfd_entry", "signalfd.img", Layout::Plain),
    Timerfd = ("TIMERFD", 0x5049_3712, "timerfd_entry", "timerfd.img", Layout::Plain),
    InotifyFile = ("INOTIFY_FILE", 0x4842_4431, "inotify_file_entry", "inotify.img", Layout::Plain),
    InotifyWd = ("INOTIFY_WD", 0x5456_2009, "inotify_wd_entry", "inotify-wd.img", Layout::Plain),
    FanotifyFile = ("FANOTIFY_FILE", 0x5509_6122, "fanotify_file_entry", "fanotify.img", Layout::Plain),
    FanotifyMark = ("FANOTIFY_MARK", 0x5650_6035, "fanotify_mark_entry", "fanotify-mark.img", Layout::Plain),
    MemfdInode = ("MEMFD_INODE", 0x4845_3499, "memfd_inode_entry", "memfd.img", Layout::Plain),
    TtyFiles = ("TTY_FILES", 0x5943_3025, "tty_file_entry", "tty.img", Layout::Plain),
    TtyInfo = ("TTY_INFO", 0x5945_3036, "tty_info_entry", "tty-info.img", Layout::Plain),
    TtyData = ("TTY_DATA", 0x5941_3026, "tty_data_entry", "tty-data.img", Layout::Plain),
    FileLocks = ("FILE_LOCKS", 0x5432_3616, "file_lock_entry", "filelocks.img", Layout::Plain),
    Tunfile = ("TUNFILE", 0x5714_3751, "tunfile_entry", "tunfile.img", Layout::Plain),
    Mnts(ns_id: u32) = ("MNTS", 0x5556_3928, "mnt_entry", "mountpoints-{}.img", Layout::Plain),
    Netdev(ns_id: u32) = ("NETDEV", 0x5737_3951, "net_device_entry", "netdev-{}.img", Layout::Plain),
    Netns(ns_id: u32) = ("NETNS", 0x5593_3752, "netns_entry", "netns-{}.img", Layout::Plain),
    Userns(ns_id: u32) = ("USERNS", 0x5547_4906, "userns_entry", "userns-{}.img", Layout::Plain),
    Pidns(ns_id: u32) = ("PIDNS", 0x6115_7326, "pidns_entry", "pidns-{}.img", Layout::Plain),
    Timens(ns_id: u32) = ("TIMENS", 0x4311_4433, "timens_entry", "timens-{}.img", Layout::Plain),
    Cgroup = ("CGROUP", 0x5938_3330, "cgroup_entry", "cgroup.img", Layout::Plain),
    Seccomp = ("SECCOMP", 0x6441_3049, "seccomp_entry", "seccomp.img", Layout::Plain),
    Cpuinfo = ("CPUINFO", 0x6140_4013, "cpuinfo_entry", "cpuinfo.img", Layout::Plain),
    Autofs(id: u32) = ("AUTOFS", 0x4935_3943, "autofs_entry", "autofs-{}.img", Layout::Plain),
    /// binfmt_misc entries; crit 3.17 lacks a handler for it.
    BinfmtMisc = ("BINFMT_MISC", 0x6734_3323, "binfmt_misc_entry", "binfmt-misc.img", Layout::Plain),
    BpfmapFile = ("BPFMAP_FILE", 0x5750_6142, "bpfmap_file_entry", "bpfmap-file.img", Layout::Plain),
    BpfmapData = ("BPFMAP_DATA", 0x6432_4033, "bpfmap_data_entry", "bpfmap-data.img", Layout::BpfmapData),
    Apparmor = ("APPARMOR", 0x5942_3047, "apparmor_entry", "apparmor.img", Layout::Plain),
    /// Dump/restore statistics (`stats-dump`, `stats-restore`: no `.img`, as CRIU names them); uses the service head magic.
    Stats = ("STATS", 0x5709_3306, "stats_entry", "stats-dump", Layout::Plain),
    /// Inode-to-path cache; uses the service head magic.
    IrmapCache = ("IRMAP_CACHE", 0x5700_4059, "irmap_cache_entry", "irmap-cache.img", Layout::Plain),
    ;
    /// A memfd's (shmem) contents: its pagemap, pages in `pages-<pages_id>.img`.
    PagemapShmem(inode: u64): Pagemap = "pagemap-shmem-{}.img",
    /// A thread's private pending signals (`signal-s-<pid>.img` holds the shared ones).
    SignalPrivate(tid: u32): Signal = "signal-p-{}.img",
    /// Restore statistics.
    StatsRestore: Stats = "stats-restore",
}

impl Kind {
    /// The kind whose own magic is `magic` (raw images, magic 0, are never returned).
    pub fn from_magic(magic: u32) -> Option<Kind> {
        Kind::ALL
            .iter()
            .copied()
            .find(|k| k.magic() == magic && k.layout() != Layout::Raw)
    }

    /// The kind crit calls `name` (e.g. "CORE").
    pub fn from_crit_name(name: &str) -> Option<Kind> {
        Kind::ALL.iter().copied().find(|k| k.crit_name() == name)
    }

    /// The head magic written before the image's own one: None for inventory (which has only
    /// its own) and raw images, the service magic for stats and irmap-cache, else the common.
    pub fn head_magic(self) -> Option<u32> {
        match self {
            Kind::Inventory | Kind::Pages => None,
            Kind::Stats | Kind::IrmapCache => Some(IMG_SERVICE_MAGIC),
            _ => Some(IMG_COMMON_MAGIC),
        }
    }

    /// Whether the file has no magic at all (pages-N.img).
    pub fn is_raw(self) -> bool {
        self.layout() == Layout::Raw
    }
}

impl ImageName {
    /// The file name: `core-42.img`. Ghost-file and tcp-stream ids are written in hex, as CRIU
    /// does (`ghost-file-1a.img`).
    pub fn file_name(self) -> String {
        let pattern = self.pattern();
        match self.id() {
            None => pattern.to_string(),
            Some(id) if self.hex_id() => pattern.replace("{}", &format!("{id:x}")),
            Some(id) => pattern.replace("{}", &id.to_string()),
        }
    }

    fn hex_id(self) -> bool {
        matches!(self.kind(), Kind::GhostFile | Kind::TcpStream)
    }

    /// The name a file called `name` has (None if no pattern matches it exactly; `core-01.img`
    /// is not `core-1.img`). Tells raw pages files, which have no magic, from the others.
    pub fn parse(name: &str) -> Option<ImageName> {
        ImageName::PATTERNS.iter().find_map(|&n| {
            let Some((pre, post)) = n.pattern().split_once("{}") else {
                return (n.pattern() == name).then_some(n);
            };
            let digits = name.strip_prefix(pre)?.strip_suffix(post)?;
            let radix = if n.hex_id() { 16 } else { 10 };
            if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
                return None;
            }
            let named = n.with_id(u64::from_str_radix(digits, radix).ok()?)?;
            (named.file_name() == name).then_some(named)
        })
    }
}

impl std::fmt::Display for ImageName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.file_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magics_are_unique_and_named() {
        for (i, a) in Kind::ALL.iter().enumerate() {
            assert_eq!(Kind::from_crit_name(a.crit_name()), Some(*a));
            for b in &Kind::ALL[i + 1..] {
                assert_ne!(a.magic(), b.magic(), "{a:?} and {b:?}");
            }
            if !a.is_raw() {
                assert_eq!(Kind::from_magic(a.magic()), Some(*a));
            }
        }
        assert_eq!(Kind::from_magic(0), None);
        assert_eq!(Kind::Core.magic(), 0x5505_3847);
        assert_eq!(Kind::Inventory.head_magic(), None);
        assert_eq!(Kind::Stats.head_magic(), Some(IMG_SERVICE_MAGIC));
        assert_eq!(Kind::Mm.head_magic(), Some(IMG_COMMON_MAGIC));
    }

    #[test]
    fn file_names() {
        assert_eq!(ImageName::Core(42).file_name(), "core-42.img");
        assert_eq!(ImageName::GhostFile(26).file_name(), "ghost-file-1a.img");
        assert_eq!(ImageName::TcpStream(0x1a).file_name(), "tcp-stream-1a.img");
        assert_eq!(ImageName::Files.file_name(), "files.img");
        assert_eq!(ImageName::Stats.file_name(), "stats-dump");
        assert_eq!(ImageName::PagemapShmem(1 << 40).file_name(), format!("pagemap-shmem-{}.img", 1u64 << 40));
        assert_eq!(ImageName::PagemapShmem(3).kind(), Kind::Pagemap);
        assert_eq!(ImageName::SignalPrivate(5).kind(), Kind::Signal);
        assert_eq!(ImageName::Fdinfo(2).id(), Some(2));
        assert_eq!(ImageName::Inventory.id(), None);
        assert_eq!(ImageName::parse("pages-1.img"), Some(ImageName::Pages(1)));
        assert_eq!(ImageName::parse("pagemap-31.img"), Some(ImageName::Pagemap(31)));
        assert_eq!(ImageName::parse("inventory.img"), Some(ImageName::Inventory));
        assert_eq!(ImageName::parse("pagemap-shmem-3.img"), Some(ImageName::PagemapShmem(3)));
        assert_eq!(ImageName::parse("ghost-file-1a.img"), Some(ImageName::GhostFile(26)));
        assert_eq!(ImageName::parse("stats-restore"), Some(ImageName::StatsRestore));
        for bad in ["core-.img", "core-01.img", "core-+1.img", "core-1a.img", "core-4294967296.img", "x.img"] {
            assert_eq!(ImageName::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_pattern_parses_back() {
        for &n in ImageName::PATTERNS {
            let named = n.with_id(7).unwrap();
            assert_eq!(ImageName::parse(&named.file_name()), Some(named), "{named:?}");
            assert_eq!(named.pattern().contains("{}"), named.id().is_some(), "{named:?}");
        }
        for &k in Kind::ALL {
            assert!(ImageName::PATTERNS.iter().any(|n| n.kind() == k), "{k:?} has no file name");
        }
    }
}
