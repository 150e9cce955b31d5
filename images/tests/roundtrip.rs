//! Round trips without crit: every generated message type against the descriptors, every
//! image kind through the framing and through JSON (plain and pretty), and the typed API
//! on a realistic dump.

mod fixtures;

use fixtures::*;
use prost::Message;
use prost_reflect::DynamicMessage;
use rcr_images::{decode_bytes, decode_dir, encode, pagemap, pb, ImageDir, ImageName, ImgReader, ImgWriter, Kind};

/// Populates every field of `name` (both variants), encodes it, decodes it with the typed
/// prost struct, re-encodes: the bytes must be identical (same numbers, types, order), and
/// the typed value must survive an ImgWriter/ImgReader round trip.
fn check<M: Message + Default + PartialEq + Clone + std::fmt::Debug>(name: &str) {
    let mut non_default = false;
    for v in 0..2 {
        let dynamic = populate(&desc(name), v);
        let bytes = dynamic.encode_to_vec();
        let typed = M::decode(bytes.as_slice()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(typed.encode_to_vec(), bytes, "{name}: typed re-encoding differs");
        assert_eq!(DynamicMessage::decode(desc(name), bytes.as_slice()).unwrap(), dynamic, "{name}");
        non_default |= typed != M::default();

        let mut w = ImgWriter::new(Vec::new(), name, Kind::Core).unwrap();
        w.write_entry(&typed).unwrap();
        w.write_entry(&typed).unwrap();
        let img = w.into_inner().unwrap();
        let mut r = ImgReader::from_bytes(&img, name, Some(Kind::Core)).unwrap();
        assert_eq!(r.read_all::<M>().unwrap(), vec![typed.clone(), typed]);
    }
    assert!(non_default, "{name}: populated messages equal the default");
}

macro_rules! every_message {
    ($($ty:ident => $name:literal,)*) => {
        #[test]
        fn every_message_type_round_trips() {
            let mut n = 0;
            $( check::<pb::$ty>($name); n += 1; )*
            assert_eq!(n, pool().all_messages().filter(|m| !m.full_name().starts_with("google.")).count(),
                "every message in the protos is listed here");
        }
    };
}

every_message! {
    AaPolicy => "aa_policy",
    AaNamespace => "aa_namespace",
    ApparmorEntry => "apparmor_entry",
    AutofsEntry => "autofs_entry",
    BinfmtMiscEntry => "binfmt_misc_entry",
    BpfmapDataEntry => "bpfmap_data_entry",
    CriuOpts => "CRIU_Opts",
    FownEntry => "fown_entry",
    BpfmapFileEntry => "bpfmap_file_entry",
    CgroupPerms => "cgroup_perms",
    CgroupPropEntry => "cgroup_prop_entry",
    CgroupDirEntry => "cgroup_dir_entry",
    CgControllerEntry => "cg_controller_entry",
    CgMemberEntry => "cg_member_entry",
    CgSetEntry => "cg_set_entry",
    CgroupEntry => "cgroup_entry",
    UserAarch64RegsEntry => "user_aarch64_regs_entry",
    UserAarch64FpsimdContextEntry => "user_aarch64_fpsimd_context_entry",
    ThreadInfoAarch64 => "thread_info_aarch64",
    UserArmRegsEntry => "user_arm_regs_entry",
    UserArmVfpstateEntry => "user_arm_vfpstate_entry",
    ThreadInfoArm => "thread_info_arm",
    UserMipsRegsEntry => "user_mips_regs_entry",
    UserMipsFpregsEntry => "user_mips_fpregs_entry",
    ThreadInfoMips => "thread_info_mips",
    UserPpc64RegsEntry => "user_ppc64_regs_entry",
    UserPpc64FpstateEntry => "user_ppc64_fpstate_entry",
    UserPpc64VrstateEntry => "user_ppc64_vrstate_entry",
    UserPpc64VsxstateEntry => "user_ppc64_vsxstate_entry",
    UserPpc64TmRegsEntry => "user_ppc64_tm_regs_entry",
    ThreadInfoPpc64 => "thread_info_ppc64",
    UserS390RegsEntry => "user_s390_regs_entry",
    UserS390VxrsLowEntry => "user_s390_vxrs_low_entry",
    UserS390VxrsHighEntry => "user_s390_vxrs_high_entry",
    UserS390FpregsEntry => "user_s390_fpregs_entry",
    UserS390GsCbEntry => "user_s390_gs_cb_entry",
    UserS390RiEntry => "user_s390_ri_entry",
    ThreadInfoS390 => "thread_info_s390",
    UserX86RegsEntry => "user_x86_regs_entry",
    UserX86XsaveEntry => "user_x86_xsave_entry",
    UserX86FpregsEntry => "user_x86_fpregs_entry",
    UserDescT => "user_desc_t",
    ThreadInfoX86 => "thread_info_x86",
    RlimitEntry => "rlimit_entry",
    ItimerEntry => "itimer_entry",
    PosixTimerEntry => "posix_timer_entry",
    TaskTimersEntry => "task_timers_entry",
    CredsEntry => "creds_entry",
    SaEntry => "sa_entry",
    SiginfoEntry => "siginfo_entry",
    SignalQueueEntry => "signal_queue_entry",
    RseqEntry => "rseq_entry",
    TaskCoreEntry => "task_core_entry",
    TaskKobjIdsEntry => "task_kobj_ids_entry",
    ThreadSasEntry => "thread_sas_entry",
    ThreadCoreEntry => "thread_core_entry",
    TaskRlimitsEntry => "task_rlimits_entry",
    CoreEntry => "core_entry",
    CpuinfoX86Entry => "cpuinfo_x86_entry",
    CpuinfoPpc64Entry => "cpuinfo_ppc64_entry",
    CpuinfoS390Entry => "cpuinfo_s390_entry",
    CpuinfoEntry => "cpuinfo_entry",
    EventfdFileEntry => "eventfd_file_entry",
    EventpollTfdEntry => "eventpoll_tfd_entry",
    EventpollFileEntry => "eventpoll_file_entry",
    ExtFileEntry => "ext_file_entry",
    RegFileEntry => "reg_file_entry",
    SkOptsEntry => "sk_opts_entry",
    IpOptsRawEntry => "ip_opts_raw_entry",
    IpOptsEntry => "ip_opts_entry",
    InetSkEntry => "inet_sk_entry",
    NsFileEntry => "ns_file_entry",
    PacketMclist => "packet_mclist",
    PacketRing => "packet_ring",
    PacketSockEntry => "packet_sock_entry",
    NetlinkSkEntry => "netlink_sk_entry",
    SignalfdEntry => "signalfd_entry",
    TunfileEntry => "tunfile_entry",
    TunLinkEntry => "tun_link_entry",
    TimerfdEntry => "timerfd_entry",
    FhEntry => "fh_entry",
    IrmapCacheEntry => "irmap_cache_entry",
    InotifyWdEntry => "inotify_wd_entry",
    InotifyFileEntry => "inotify_file_entry",
    FanotifyInodeMarkEntry => "fanotify_inode_mark_entry",
    FanotifyMountMarkEntry => "fanotify_mount_mark_entry",
    FanotifyMarkEntry => "fanotify_mark_entry",
    FanotifyFileEntry => "fanotify_file_entry",
    FilePermsEntry => "file_perms_entry",
    UnixSkEntry => "unix_sk_entry",
    FifoEntry => "fifo_entry",
    PipeEntry => "pipe_entry",
    WinsizeEntry => "winsize_entry",
    TermiosEntry => "termios_entry",
    TtyPtyEntry => "tty_pty_entry",
    TtyDataEntry => "tty_data_entry",
    TtyInfoEntry => "tty_info_entry",
    TtyFileEntry => "tty_file_entry",
    MemfdFileEntry => "memfd_file_entry",
    MemfdInodeEntry => "memfd_inode_entry",
    FdinfoEntry => "fdinfo_entry",
    FileEntry => "file_entry",
    FileLockEntry => "file_lock_entry",
    FsEntry => "fs_entry",
    Timeval => "timeval",
    GhostFileEntry => "ghost_file_entry",
    GhostChunkEntry => "ghost_chunk_entry",
    ImgStreamerRequestEntry => "img_streamer_request_entry",
    ImgStreamerReplyEntry => "img_streamer_reply_entry",
    InventoryEntry => "inventory_entry",
    IpcDescEntry => "ipc_desc_entry",
    IpcMsg => "ipc_msg",
    IpcMsgEntry => "ipc_msg_entry",
    IpcSemEntry => "ipc_sem_entry",
    IpcShmEntry => "ipc_shm_entry",
    IpcVarEntry => "ipc_var_entry",
    MacvlanLinkEntry => "macvlan_link_entry",
    VmaEntry => "vma_entry",
    AioRingEntry => "aio_ring_entry",
    MmEntry => "mm_entry",
    MntEntry => "mnt_entry",
    SysctlEntry => "sysctl_entry",
    SitEntry => "sit_entry",
    NetDeviceEntry => "net_device_entry",
    NetnsId => "netns_id",
    NetnsEntry => "netns_entry",
    PagemapHead => "pagemap_head",
    PagemapEntry => "pagemap_entry",
    PidnsEntry => "pidns_entry",
    PipeDataEntry => "pipe_data_entry",
    PstreeEntry => "pstree_entry",
    RemapFilePathEntry => "remap_file_path_entry",
    SeccompFilter => "seccomp_filter",
    SeccompEntry => "seccomp_entry",
    ScmEntry => "scm_entry",
    SkPacketEntry => "sk_packet_entry",
    DumpStatsEntry => "dump_stats_entry",
    RestoreStatsEntry => "restore_stats_entry",
    StatsEntry => "stats_entry",
    TcpStreamEntry => "tcp_stream_entry",
    Timespec => "timespec",
    TimensEntry => "timens_entry",
    UidGidExtent => "uid_gid_extent",
    UsernsEntry => "userns_entry",
    UtsnsEntry => "utsns_entry",
}

#[test]
fn every_kind_round_trips_through_json() {
    for &kind in Kind::ALL.iter().filter(|k| !k.is_raw()) {
        for alt in [false, true] {
            let img = generic_image(kind, alt);
            for pretty in [false, true] {
                let j = decode_bytes(&img, kind.crit_name(), pretty).unwrap();
                assert_eq!(j["magic"], kind.crit_name());
                assert!(!j["entries"].as_array().unwrap().is_empty(), "{kind:?}");
                let back = encode(&j).unwrap_or_else(|e| panic!("{kind:?} pretty={pretty}: {e}"));
                assert_eq!(back, img, "{kind:?} alt={alt} pretty={pretty}");
                // and through JSON text
                let text = serde_json::to_string_pretty(&j).unwrap();
                let reparsed: serde_json::Value = serde_json::from_str(&text).unwrap();
                assert_eq!(encode(&reparsed).unwrap(), img);
            }
        }
    }
}

#[test]
fn realistic_dump_reads_back_typed() {
    let dir = tempdir();
    let names = write_realistic(dir.path());
    assert!(names.len() > 25);

    let images = ImageDir::new(dir.path());
    let inv: Vec<pb::InventoryEntry> = images.read_all(ImageName::Inventory).unwrap();
    assert_eq!(inv.len(), 1);
    assert_eq!(inv[0].img_version, 2);
    assert_eq!(images.read_one::<pb::InventoryEntry>(ImageName::Inventory).unwrap(), inv[0]);

    let core_path = images.file(ImageName::Core(ROOT));
    let mut r = ImgReader::open_any(&core_path).unwrap();
    assert_eq!(r.kind(), Kind::Core);
    let core: Vec<pb::CoreEntry> = r.read_all().unwrap();
    assert_eq!(core.len(), 1);
    let ti = core[0].thread_info.as_ref().unwrap();
    assert_eq!(ti.gpregs.ax, u64::MAX - 37);
    assert_eq!(ti.fpregs.xsave.as_ref().unwrap().ymmh_space.len(), 64);
    assert_eq!(core[0].tc.as_ref().unwrap().sigactions.len(), 64);

    // pagemap: head, then ranges; the pages file holds the present ones in order.
    let mut r = images.open(ImageName::Pagemap(ROOT)).unwrap();
    let head: pb::PagemapHead = r.read_entry().unwrap().unwrap();
    let ranges: Vec<pb::PagemapEntry> = r.read_all().unwrap();
    assert_eq!(ranges.iter().map(pagemap::nr_pages).collect::<Vec<_>>(), vec![3, 16, 2]);
    let present: u64 = ranges.iter().filter(|e| pagemap::in_pages_file(e)).map(pagemap::nr_pages).sum();
    let mut pages = images.open(ImageName::Pages(head.pages_id)).unwrap();
    assert_eq!(pages.remaining(), present * pagemap::PAGE_SIZE);
    assert_eq!(pages.read_raw_to_end().unwrap(), payload(5 * 4096, 7));

    // raw payloads
    let mut r = images.open(ImageName::PipesData).unwrap();
    let e: pb::PipeDataEntry = r.read_entry().unwrap().unwrap();
    assert_eq!(r.read_raw(e.bytes.into()).unwrap(), payload(100, 1));
    let e: pb::PipeDataEntry = r.read_entry().unwrap().unwrap();
    assert_eq!(e.bytes, 0);
    assert!(r.read_entry::<pb::PipeDataEntry>().unwrap().is_none());

    let all = decode_dir(dir.path(), true).unwrap();
    assert_eq!(all.as_object().unwrap().len(), names.len() - 1, "all but pages-1.img");
    assert_eq!(all["core-4242.img"]["entries"][0]["thread_info"]["gpregs"]["cs"], "0x33");
    assert_eq!(all["mm-4242.img"]["entries"][0]["vmas"][1]["prot"], "PROT_READ | PROT_WRITE");
    assert_eq!(all["mm-4242.img"]["entries"][0]["vmas"][1]["flags"], "MAP_PRIVATE | MAP_ANON");
    assert_eq!(all["files.img"]["entries"][5]["usk"]["name"], "=00abstract-sock");
    assert_eq!(all["files.img"]["entries"][7]["isk"]["src_addr"][0], "::ffff:7f00:1");
    assert_eq!(all["files.img"]["entries"][7]["isk"]["family"], "INET6");
    assert_eq!(all["pipes-data.img"]["entries"][1]["extra"], "");
    assert_eq!(all["ghost-file-1a.img"]["entries"][0]["extra"], "aGVsbG8=\n");
    assert_eq!(all["ghost-file-1a.img"]["entries"][0]["dev"], "8:1");
    assert_eq!(all["pagemap-4242.img"]["entries"][2]["flags"], "PE_LAZY");
    assert_eq!(all["tcp-stream-1a.img"]["entries"][0]["extra"]["outq"], "b3U=\n");
}

#[test]
fn writer_refuses_entries_in_raw_images() {
    let mut w = ImgWriter::new(Vec::new(), "pages", Kind::Pages).unwrap();
    assert!(w.write_entry(&pb::PagemapHead { pages_id: 1 }).is_err());
    w.write_raw(b"page").unwrap();
    assert_eq!(w.into_inner().unwrap(), b"page");
}

#[test]
fn magics_on_disk() {
    let head = |kind: Kind| ImgWriter::new(Vec::new(), "x", kind).unwrap().into_inner().unwrap();
    assert_eq!(head(Kind::Inventory), 0x5831_3116u32.to_le_bytes());
    assert_eq!(head(Kind::Core), [0x5456_4319u32.to_le_bytes(), 0x5505_3847u32.to_le_bytes()].concat());
    assert_eq!(head(Kind::Stats), [0x5510_5940u32.to_le_bytes(), 0x5709_3306u32.to_le_bytes()].concat());
    assert!(head(Kind::Pages).is_empty());
}
