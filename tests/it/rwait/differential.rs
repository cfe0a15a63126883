//! Differential scenarios: each runs under the real inotifywait 3.22.6 and under rwait
//! and must produce the same stdout, stderr and exit status. Trailing `// #N` numbers
//! are the scenarios' names from the first study of inotifywait (docs/background.md,
//! "The differential scenarios"); each scenario here is complete without it.

use std::path::Path;

use super::diff::{End, Ready, sc, usage};

macro_rules! scenarios {
    ($($name:ident => $e:expr;)*) => {
        $(
            #[test]
            fn $name() {
                $e.check();
            }
        )*
    };
}

const D: &str = "mkdir d; echo x > d/f";
const TREE: &str = "mkdir -p d/a/b; echo x > d/a/b/f";

// Basics.
scenarios! {
    oneshot_dir_open => sc(D, &["d"], "touch d/f");                               // #1
    oneshot_file_open => sc(D, &["d/f"], "touch d/f");                            // #2
    monitor_create_and_write => sc(D, &["-m", "d"], "echo hi > d/new");           // #3
    monitor_append => sc(D, &["-m", "d"], "echo more >> d/f");                    // #4
    monitor_read => sc(D, &["-m", "d"], "cat d/f > /dev/null");                   // #5
    // #6 (`ls d`) is left out on purpose: whether the two getdents calls give one
    // ACCESS line or two depends on when the watcher reads, in inotifywait too.
    monitor_chmod_rm => sc(D, &["-m", "d"], "chmod 600 d/f; rm d/f");             // #7
    monitor_mkdir_rmdir => sc(D, &["-m", "d"], "mkdir d/sub; rmdir d/sub");       // #8
    monitor_rename => sc(D, &["-m", "d"], "mv d/f d/g");                          // #9
    event_close_write_only => sc(D, &["-m", "-e", "close_write", "d"], "echo a > d/f; cat d/f"); // #10
    quiet_no_banners => sc(D, &["-q", "d"], "touch d/a").ready(Ready::Watches(1)); // #24
    quiet_twice_prints_nothing => sc(D, &["-qq", "-m", "d"], "touch d/a").ready(Ready::Watches(1)); // #23
    quiet_long_twice => sc(D, &["--quiet", "--quiet", "-m", "d"], "touch d/a").ready(Ready::Watches(1));
    events_move_and_close => sc(D, &["-m", "-e", "move", "-e", "close", "d"], "echo 1 > d/a; mv d/a d/b; cat d/b"); // #26
    events_comma_list_and_repeat => sc(D, &["-m", "-e", "create,delete", "-e", "attrib", "d"], "touch d/a; rm d/a"); // #97
    events_empty_element_means_all => sc(D, &["-m", "-e", "create,", "d"], "chmod 600 d/f"); // #109
    events_empty_arg_adds_nothing => sc(D, &["-m", "-e", "create", "-e", "", "d"], "chmod 600 d/f; touch d/n"); // #111
    events_uppercase => sc(D, &["-m", "-e", "CREATE,Delete", "d"], "touch d/a; rm d/a");
    events_leading_empty_hides_bogus => sc(D, &["-m", "-e", ",bogus", "d"], "touch d/a");
    events_all_events_name => sc(D, &["-m", "-e", "all_events", "d"], "touch d/a");
}

// Deletion, moves of watched objects, exit codes.
scenarios! {
    oneshot_rm_watched_file => sc(D, &["d/f"], "rm d/f");                         // #11
    monitor_rm_watched_file => sc(D, &["-m", "d/f"], "rm d/f");                   // #12
    oneshot_unwanted_event_exits_1 => sc(D, &["-e", "modify", "d/f"], "rm d/f");  // #13
    monitor_unwanted_event_keeps_running => sc(D, &["-m", "-e", "modify", "d/f"], "rm d/f"); // #14
    // rm -rf reads the directory: how many ACCESS lines that gives depends on when the
    // watcher reads (in inotifywait too), so those events are left out here.
    monitor_rm_rf_watched_dir => sc(D, &["-m", "-e", "delete,delete_self,ignored", "d"], "rm -rf d"); // #15
    oneshot_delete_then_rmdir => sc(D, &["d"], "rm -f d/f; rmdir d");            // #16
    monitor_watched_dir_renamed_keeps_old_name => sc(D, &["-m", "d"], "mv d d2; touch d2/zz"); // #17
    monitor_watched_file_renamed => sc(D, &["-m", "d/f"], "mv d/f d/g; echo y >> d/g"); // #18
    monitor_dir_and_file => sc(D, &["-m", "d", "d/f"], "rm d/f");                // #19
    oneshot_delete_self => sc(D, &["-e", "delete_self", "d/f"], "rm d/f");       // #20
    monitor_ignored_when_asked => sc(D, &["-m", "-e", "delete_self", "-e", "ignored", "d/f"], "rm d/f"); // #73
    oneshot_ignored_when_asked => sc(D, &["-e", "ignored", "d/f"], "rm d/f");    // #74
    monitor_dir_and_file_rename => sc(D, &["-m", "d", "d/f"], "mv d/f d/g");     // #103
    monitor_hardlink_events_under_watched_name => sc(D, &["-m", "d/f"], "ln d/f d/h; echo x >> d/h"); // #104
    same_dir_two_spellings_first_wins => sc(D, &["-m", "d", "./d", "d/"], "touch d/a");
    verbatim_paths => sc("mkdir -p d/sub", &["-m", "d//"], "touch d/a");
    verbatim_dotdot => sc("mkdir -p d/sub", &["-m", "d/sub/.."], "touch d/c");
    dot_operand => sc("mkdir -p d", &["-m", "."], "touch b");
}

// Timeout.
scenarios! {
    timeout_without_events_exits_2 => sc(D, &["-t", "1", "d"], "");                  // #22
    timeout_is_inactivity_in_monitor => sc(D, &["-m", "-t", "1", "d"], "touch d/a").end(End::Exit); // #21
    timeout_wraps_to_32_bits => sc(D, &["-q", "-t", "4294967297", "d"], "").ready(Ready::Watches(1));
    timeout_attached_value => sc(D, &["-qt1", "d"], "").ready(Ready::Watches(1));
    timeout_long_option_equals => sc(D, &["--timeout=1", "-q", "d"], "").ready(Ready::Watches(1));
    timeout_with_excluded_events_still_counts => sc(D, &["-t", "1", "--exclude", "x", "d"], "touch d/x; sleep 0.5; touch d/x"); // #93
    // Under -m -r rwait also asks the kernel for MOVE_SELF (to know a directory left
    // the tree); inotifywait does not, so the operand's rename must not restart the
    // timeout: the mv is inside the first 2 s, the touch after them but inside mv + 2 s
    // (issue 16.8). Both print nothing and exit 2.
    timeout_ignores_own_move_self => sc(D, &["-m", "-r", "-t", "2", "-e", "create", "d"], "sleep 1; mv d e; sleep 1.5; touch e/b").end(End::Exit);
    timeout_plus_sign_and_blank => sc(D, &["-q", "-t", " +1", "d"], "").ready(Ready::Watches(1));
}

// --format and --timefmt.
scenarios! {
    format_directives => sc(D, &["-m", "--format", "[%w][%f][%e][%:e][%_e][%%][%x][%Te]", "--timefmt", "%Y", "d"], "touch d/a; mv d/a d/b"); // #25
    format_nul_no_newline => sc(D, &["-m", "--format", "%w%f%0", "--no-newline", "-e", "create", "d"], "touch d/a d/b"); // #28
    format_percent_n => sc(D, &["-m", "--format", "%f%n%e", "-e", "create", "d"], "touch d/a"); // #29
    format_trailing_percent => sc(D, &["-m", "--format", "x%", "-e", "create", "d"], "touch d/a"); // #30
    format_trailing_percent_no_newline_prints_nothing => sc(D, &["-m", "--format", "x%", "--no-newline", "-e", "create", "d"], "touch d/a"); // #31
    format_empty_prints_empty_lines => sc(D, &["-m", "--format", "", "-e", "create", "d"], "touch d/a d/b"); // #32
    format_empty_no_newline_rejected => usage(&["--format", "", "--no-newline", "d"]); // #33
    format_name_only_no_newline_rejected => usage(&["--format", "%f", "--no-newline", "d"]); // #34
    format_watch_only_no_newline_rejected => usage(&["--format", "%w", "--no-newline", "d"]); // #35
    format_events_no_newline => sc(D, &["-m", "--format", "%e", "--no-newline", "-e", "create", "d"], "touch d/a d/b"); // #36
    timefmt_empty_prints_nothing => sc(D, &["-m", "--format", "%T|%f", "--timefmt", "", "-e", "create", "d"], "touch d/a"); // #37
    timefmt_literal_percent => sc(D, &["-m", "--format", "%T|%f", "--timefmt", "year %Y %%", "-e", "create", "d"], "touch d/a"); // #38
    format_separator_forms => sc(D, &["-m", "--format", "%%e|%ee|%1e|%-e|% e", "-e", "close_write", "d"], "touch d/a"); // #39
    format_plain_text => sc(D, &["-m", "--format", "hello", "-e", "create", "d"], "touch d/a"); // #40
    timefmt_zone_name_from_tz => sc(D, &["-m", "--format", "%T %f", "--timefmt", "%Z", "-e", "create", "d"], "touch d/a").env("TZ", "XYZ-3");
    timefmt_unknown_specifiers_are_literal => sc(D, &["-m", "--format", "%T %f", "--timefmt", "%Q|%10Y|%^b", "-e", "create", "d"], "touch d/a");
    timefmt_c_locale_names => sc(D, &["-m", "--format", "%T", "--timefmt", "%Y", "-e", "create", "d"], "touch d/a").env("LC_ALL", "de_DE.UTF-8");
    format_cookie_zero_without_move => sc(D, &["-m", "--format", "%c|%e|%f", "-e", "create", "d"], "touch d/a");
    format_last_one_wins => sc(D, &["-m", "--format", "first %f", "--format", "second %f", "-e", "create", "d"], "touch d/a");
    format_percent_in_name => sc(D, &["-m", "--format", "%w%f", "-e", "create", "d"], "touch 'd/100%' 'd/%w%f'");
}

// CSV and awkward names.
scenarios! {
    csv_basic => sc(D, &["-m", "-c", "d"], "touch d/a; mkdir d/s");                          // #41
    csv_quoting => sc(D, &["-m", "-c", "-e", "create", "d"], r#"touch 'd/a b' 'd/a,b' 'd/a"b' 'd/ lead' 'd/trail ' 'd/semi;colon' "d/it's""#); // #42
    csv_newline_in_name => sc(D, &["-m", "-c", "-e", "create", "d"], r"touch $'d/nl\nx'");   // #43
    default_newline_in_name => sc(D, &["-m", "-e", "create", "d"], r"touch $'d/nl\nx'");    // #44
    default_non_utf8_name => sc(D, &["-m", "-e", "create", "d"], r"touch $'d/bad\xff\xfe'"); // #45
    csv_non_utf8_name => sc(D, &["-m", "-c", "-e", "create", "d"], r"touch $'d/bad\xff'");   // #46
    csv_comma_in_watched_dir => sc("mkdir 'd,ir'", &["-m", "-c", "-e", "create", "d,ir"], "touch 'd,ir/x'"); // #47
    csv_space_in_watched_dir => sc("mkdir 'd ir'", &["-m", "-c", "-e", "create", "d ir"], "touch 'd ir/x'"); // #48
    csv_leading_space_dir => sc("mkdir ' dir'", &["-m", "-c", "-e", "create", " dir"], "touch ' dir/x'"); // #49
    csv_watched_file_with_comma => sc("mkdir d; touch 'd/f,1'", &["-m", "-c", "d/f,1"], "touch 'd/f,1'"); // #50
    csv_tab_and_cr_raw => sc(D, &["-m", "-c", "-e", "create", "d"], r"touch $'d/t\tab' $'d/c\rr'");
    name_with_leading_dash => sc(D, &["-m", "-e", "create", "d"], "touch -- d/-x d/--y");
    name_with_spaces_and_quotes => sc(D, &["-m", "-e", "create", "d"], r#"touch 'd/a  b ' "d/\$(id)" 'd/`x`'"#);
    long_name_255_bytes => sc(D, &["-m", "-e", "create", "d"], "touch d/$(printf 'n%.0s' $(seq 255))");
    watched_dir_named_dash_m => sc("mkdir -- -m", &["-m", "--", "-m"], "touch -- -m/x");
}

// Recursive watches.
scenarios! {
    recursive_existing_tree => sc(TREE, &["-m", "-r", "d"], "touch d/a/b/f");                 // #51
    recursive_new_dir_then_file => sc(TREE, &["-m", "-r", "-e", "create", "d"], "mkdir d/n; sleep .3; touch d/n/x"); // #52
    recursive_new_dir_self_induced_lines => sc(TREE, &["-m", "-r", "d"], "mkdir d/n");         // #61
    recursive_rename_dir => sc(TREE, &["-m", "-r", "d"], "mv d/a d/a2; touch d/a2/b/f");       // #54
    recursive_oneshot => sc(TREE, &["-r", "d"], "touch d/a/b/f");                             // #57
    recursive_file_operand => sc(TREE, &["-m", "-r", "d/a/b/f"], "touch d/a/b/f");             // #58
    recursive_dot_slash_spelling => sc(TREE, &["-m", "-r", "./d/"], "touch d/a/b/f");          // #59
    recursive_dot => sc(TREE, &["-m", "-r", "."], "touch d/a/b/f");                           // #60
    recursive_exclude_regex => sc(TREE, &["-m", "-r", "--exclude", "/a/", "d"], "touch d/a/b/f d/top; mkdir d/a/new; touch d/a/new/x"); // #63
    recursive_exclude_suffix => sc(TREE, &["-m", "-r", "-e", "create", "--exclude", "\\.tmp$", "d"], "touch d/x.tmp d/x.txt d/a/y.tmp"); // #64
    recursive_include_drops_new_dirs => sc(TREE, &["-m", "-r", "-e", "create", "--include", "\\.txt$", "d"], "touch d/x.tmp d/x.txt d/a/y.txt; mkdir d/new; touch d/new/z.txt"); // #65
    excludei_ascii_case => sc(D, &["-m", "-e", "create", "--excludei", "ABC", "d"], "touch d/abc d/xyz"); // #66
    exclude_anchored_dir_self => sc(D, &["-m", "--exclude", "^d/$", "d"], "touch d/q; ls d");  // #68
    at_exclude_subtree => sc(TREE, &["-m", "-r", "d", "@d/a"], "touch d/a/b/f d/a/x d/y");     // #69
    at_exclude_spelling_must_match => sc(TREE, &["-m", "-r", "d", "@{S}/d/a"], "touch d/a/x"); // #70
    recursive_rm_rf_subtree => sc(TREE, &["-m", "-r", "-e", "delete,delete_self,ignored", "d"], "rm -rf d/a"); // #101
    recursive_rm_and_recreate => sc(TREE, &["-m", "-r", "-e", "create", "-e", "delete", "d"], "rm -rf d/a; mkdir d/a; sleep .3; touch d/a/new"); // #102
    // A watcher that adds its watch on the moved-in directory fast enough catches the
    // MOVE_SELF the kernel sends after MOVED_TO within the same rename(): a race in
    // inotifywait too, so MOVE_SELF is left out of this one.
    recursive_move_in_from_outside => sc("mkdir -p d o/x/y", &["-m", "-r", "-e", "moved_to,create,open,access,close,attrib,modify,delete", "d"], "mv o/x d/x; sleep .3; touch d/x/y/f"); // #56
    exclude_backreference_glibc => sc(D, &["-m", "-e", "create", "--exclude", "(a)\\1", "d"], "touch d/xaa d/xab");
    exclude_word_boundary_glibc => sc(D, &["-m", "-e", "create", "--exclude", "\\<ab\\>", "d"], "touch 'd/x ab' d/xab");
    exclude_brace_without_min => sc(D, &["-m", "-e", "create", "--exclude", "^d/a{,2}$", "d"], "touch d/a d/aa d/aaa");
    exclude_empty_drops_all => sc(D, &["-m", "--exclude", "", "d"], "touch d/a");
    exclude_warning_when_repeated => sc(D, &["-m", "--exclude", "a", "--exclude", "b", "-e", "create", "d"], "touch d/a d/b");
    exclude_long_option_equals => sc(D, &["-m", "--exclude=^d/a$", "-e", "create", "d"], "touch d/a d/b");
    recursive_fromfile => sc("mkdir d e; printf 'd\\n@e\\ne\\n\\n' > list", &["-m", "--fromfile", "list"], "touch d/a e/b"); // #87
    fromfile_stdin => sc(D, &["-m", "--fromfile", "-"], "touch d/a").stdin(b"d\n");
    fromfile_keeps_spaces => sc("mkdir 'd ' d; printf 'd \\nd\\n' > list", &["-m", "--fromfile", "list"], "touch 'd /a' d/b");
    fromfile_cr_is_part_of_the_name => usage(&["--fromfile", "list"]).setup_more("printf 'd\\r\\n' > list");
}

// Symlinks.
scenarios! {
    symlink_to_file_followed => sc("mkdir real; touch real/t; ln -s real/t tlink", &["-m", "tlink"], "touch real/t"); // #81
    no_dereference_ignores_target => sc("mkdir real; touch real/t; ln -s real/t tlink", &["-m", "-P", "tlink"], "touch real/t"); // #82
    no_dereference_sees_link => sc("mkdir real; touch real/t; ln -s real/t tlink", &["-m", "-P", "tlink"], "touch -h tlink"); // #83
    symlink_to_dir_no_slash => sc("mkdir real; ln -s real dlink", &["-m", "dlink"], "touch real/x"); // #84
    symlink_to_dir_recursive_slash => sc("mkdir real; ln -s real dlink", &["-m", "-r", "dlink"], "touch real/z"); // #86
    symlink_inside_tree_not_followed => sc("mkdir d real; ln -s ../real d/link", &["-m", "-r", "d"], "touch real/y; touch -h d/link"); // #85
    no_dereference_oneshot_exits_2 => sc("mkdir real; touch real/t; ln -s real/t tlink", &["-q", "-P", "-t", "1", "tlink"], "touch real/t").ready(Ready::Watches(1));
}

// Output file.
scenarios! {
    outfile_gets_events_mode_0600 => sc(D, &["-m", "-o", "out.log", "d"], "touch d/q").file("out.log"); // #89
    outfile_appends => sc("mkdir d; echo old > out.log", &["-m", "-o", "out.log", "-e", "create", "d"], "touch d/q").file("out.log");
}

// Special events: unmount.
const TMPFS: &str = "mkdir m && mount -t tmpfs none m && mkdir m/sub && touch m/file";
scenarios! {
    unmount_not_printed_by_default => sc(TMPFS, &["-m", "m", "m/sub", "m/file"], "umount m").cleanup("umount m 2>/dev/null || true"); // #75
    unmount_oneshot_exits_1 => sc(TMPFS, &["m"], "umount m").cleanup("umount m 2>/dev/null || true"); // #76
    unmount_and_ignored_when_asked => sc(TMPFS, &["-m", "-e", "unmount", "-e", "ignored", "m", "m/sub", "m/file"], "umount m").cleanup("umount m 2>/dev/null || true"); // #78
    unmount_oneshot_when_asked => sc(TMPFS, &["-e", "unmount", "m"], "umount m").cleanup("umount m 2>/dev/null || true"); // #79
}

// Command-line parsing and its diagnostics.
scenarios! {
    err_unrecognized_long => usage(&["--foo", "."]);
    err_checks_after_bad_option => usage(&["-d", "--foo", "."]);
    err_event_before_bad_option => usage(&["-e", "bogus", "--foo", "."]);
    err_bad_option_before_event => usage(&["--foo", "-e", "bogus", "."]);
    err_timeout_not_a_number => usage(&["-t", "x", "."]);
    err_timeout_fraction => usage(&["-t", "1.5", "."]);
    err_timeout_hex => usage(&["-t", "0x1", "."]);
    err_timeout_empty => usage(&["-t", "", "."]);
    err_timeout_blank => usage(&["-t", " ", "."]);
    err_timeout_out_of_range => usage(&["-t", "99999999999999999999", "."]);
    err_timeout_range_beats_junk => usage(&["-t", "99999999999999999999x", "."]);
    err_event_then_help => usage(&["-e", "bogus", "-h"]);
    err_csv_and_format => usage(&["-c", "--format", "x", "."]);
    err_format_and_csv => usage(&["--format", "x", "-c", "."]);
    err_exclude_and_excludei => usage(&["--exclude", "a", "--excludei", "b", "."]);
    err_include_and_includei => usage(&["--include", "a", "--includei", "b", "."]);
    err_include_and_exclude => usage(&["--exclude", "a", "--include", "b", "."]);
    err_bad_exclude_regex => usage(&["--exclude", "*x", "."]);
    err_bad_include_regex => usage(&["--include", "(", "."]);
    err_bad_brace_regex => usage(&["--exclude", "a{1", "."]);
    err_no_newline_without_format => usage(&["-m", "--no-newline", "."]);
    err_timefmt_without_format => usage(&["--timefmt", "x", "."]);
    err_percent_t_without_timefmt => usage(&["--format", "%T", "."]);
    err_percent_percent_t_without_timefmt => usage(&["--format", "%%T", "."]);
    err_fromfile_missing => usage(&["--fromfile", "/nonexistent/list"]);
    err_fromfile_twice => usage(&["--fromfile", "a", "--fromfile", "b"]);
    err_outfile_twice => usage(&["-o", "a", "-o", "b"]);
    err_filename_obsolete => usage(&["-f", "."]);
    err_ambiguous_excl => usage(&["--excl", "x", "."]);
    err_ambiguous_f => usage(&["--f", "."]);
    err_ambiguous_t => usage(&["--t", "1", "."]);
    err_ambiguous_in => usage(&["--in", "."]);
    err_ambiguous_no => usage(&["--no", "."]);
    err_no_argument_allowed => usage(&["--csv=1", "."]);
    err_help_no_argument => usage(&["--help=x"]);
    err_short_missing_argument => usage(&["-t"]);
    err_long_missing_argument => usage(&["--timeout"]);
    err_invalid_short => usage(&["-x"]);
    err_invalid_short_in_cluster => usage(&["-mx", "."]);
    err_no_files => usage(&[]);
    err_no_files_only_excludes => usage(&["@d", "", "@"]);
    err_missing_operand => usage(&["nonexistent"]);
    err_missing_operand_recursive => usage(&["-r", "nonexistent"]);
    err_file_with_slash => sc(D, &["d/f/"], "").ready(Ready::Exit);
    err_event_unknown_after_name => usage(&["-e", "bogus,", "d"]);
    err_event_unknown_in_list => usage(&["-e", "ACCESS,bogus", "d"]);
    err_event_numeric => usage(&["-e", "0x100", "d"]);
    err_daemon_needs_outfile => usage(&["-d", "d"]);
    err_daemon_outfile_must_exist => usage(&["-d", "-o", "newlog", "d"]);
    err_outfile_unopenable => usage(&["-o", "/nonexistent/x", "d"]);
    posixly_correct_stops_at_operand => sc(D, &["d", "-t", "1"], "").ready(Ready::Exit).env("POSIXLY_CORRECT", "1");
    permutation_options_after_operand => sc(D, &["d", "-t", "1"], "");
    double_dash_ends_options => sc("mkdir -- -t", &["-q", "-t", "1", "--", "-t"], "").ready(Ready::Watches(1));
    cluster_mrq => sc(TREE, &["-mrq", "d"], "touch d/a/b/f").ready(Ready::Watches(3));
    cluster_attached_event => sc(D, &["-mecreate", "d"], "touch d/a; chmod 600 d/a");
    abbreviations_accepted => sc(TREE, &["--mon", "--rec", "--ev", "create", "d"], "touch d/a/x").end(End::Settle);
    exact_name_beats_longer => sc(D, &["-m", "--exclude", "^d/a$", "-e", "create", "d"], "touch d/a d/b");
    watch_limit_names_the_operand => usage(&["-r", "-t", "1", "big"]).setup_more("mkdir -p big/{1,2,3,4,5,6,7,8,9,10,11,12,13,14,15}").limit("max_inotify_watches", 10);
    instance_limit => usage(&["-t", "1", "d"]).limit("max_inotify_instances", 0);
    syslog_keeps_stderr_empty => sc(D, &["-s", "-t", "1", "d"], "").ready(Ready::Watches(1)); // #95
    inotify_flag_accepted => sc(D, &["-I", "-q", "-t", "1", "d"], "").ready(Ready::Watches(1));
}

// Messages are bytes: a path that is not UTF-8 is printed raw in every diagnostic
// (issue 10.3, 16.4). `{xHH}` in an argument is the byte 0xHH.
scenarios! {
    raw_bytes_missing_operand => usage(&["nonexist{xff}"]);
    raw_bytes_missing_operand_recursive => usage(&["-r", "caf{xe9}/x"]);
    raw_bytes_fromfile_unopenable => usage(&["--fromfile", "caf{xe9}/x"]);
    raw_bytes_fromfile_line => usage(&["--fromfile", "list"]).setup_more("printf 'nonexist\\377\\n' > list");
    raw_bytes_outfile_unopenable => usage(&["-o", "caf{xe9}/x", "d"]);
    raw_bytes_daemon_outfile_missing => usage(&["-d", "-o", "caf{xe9}/x", "d"]);
    raw_bytes_watch_limit => usage(&["-r", "-t", "1", "big{xff}"]).setup_more("mkdir -p $'big\\377'/{1,2,3,4,5,6,7,8,9,10,11,12,13,14,15}").limit("max_inotify_watches", 10);
}

// A repeated --exclude/--excludei warns at the end of option parsing: after the
// consistency checks, before every later error, always on stderr (issue 16.1).
scenarios! {
    exclude_warning_before_no_files => usage(&["--exclude", "a", "--exclude", "b"]);
    exclude_warning_before_bad_regex => usage(&["--exclude", "a", "--exclude", "*x", "d"]);
    exclude_warning_before_format_error => usage(&["--exclude", "a", "--exclude", "b", "--format", "%w", "--no-newline", "d"]);
    exclude_warning_before_fromfile_error => usage(&["--exclude", "a", "--exclude", "b", "--fromfile", "nope"]);
    exclude_warning_before_outfile_error => usage(&["--exclude", "a", "--exclude", "b", "-o", "/nonexistent/x", "d"]);
    exclude_warning_after_bad_option => usage(&["--exclude", "a", "--exclude", "b", "--foo", "d"]);
    exclude_warning_not_counted_after_bad_option => usage(&["--exclude", "a", "--foo", "--exclude", "b", "d"]);
    exclude_warning_not_after_failed_check => usage(&["--exclude", "a", "--exclude", "b", "-d", "d"]);
    exclude_warning_not_with_excludei_conflict => usage(&["--exclude", "a", "--exclude", "b", "--excludei", "c", "d"]);
    exclude_warning_with_syslog_on_stderr => sc(D, &["--exclude", "a", "--exclude", "b", "-s", "-t", "1", "d"], "").ready(Ready::Watches(1));
    exclude_warning_with_daemon_on_stderr => usage(&["--exclude", "a", "--exclude", "b", "-d", "-t", "1", "-o", "{S}/out.log", "d"]).setup_more("touch out.log");
    excludei_warning_with_quiet => sc(D, &["--excludei", "a", "--excludei", "b", "-q", "-t", "1", "d"], "").ready(Ready::Watches(1));
    exclude_warning_three_times_once => sc(D, &["--exclude=a", "--exclude=b", "--exclude=c", "-t", "1", "d"], "");
    include_repeated_no_warning => sc(D, &["--include", "a", "--include", "b", "-t", "1", "d"], "");
    includei_repeated_no_warning => sc(D, &["--includei", "a", "--includei", "b", "-t", "1", "d"], "");
}

// --fromfile read as inotifywait reads it: fopen, then fgets into C strings (issue 16.3).
scenarios! {
    fromfile_directory_reads_as_empty => usage(&["--fromfile", "d"]);
    fromfile_directory_then_operands => sc(D, &["--fromfile", "d", "-m", "-e", "create", "d"], "touch d/a");
    fromfile_nul_cuts_the_line => sc("mkdir d e; printf 'd\\0junk\\ne\\n' > list", &["-m", "-e", "create", "--fromfile", "list"], "touch d/a e/b");
    fromfile_nul_first_is_an_empty_line => sc("mkdir d e; printf '\\0d\\ne\\n' > list", &["-m", "-e", "create", "--fromfile", "list"], "touch d/a e/b");
    fromfile_nul_without_newline => sc("mkdir d; printf 'd\\0' > list", &["-m", "-e", "create", "--fromfile", "list"], "touch d/a");
    fromfile_nul_then_missing => usage(&["--fromfile", "list"]).setup_more("printf 'nope\\0d\\n' > list");
    fromfile_nul_in_at_exclude => sc("mkdir -p d/s; printf '@d/s\\0x\\nd\\n' > list", &["-m", "-r", "-e", "create", "--fromfile", "list"], "touch d/a d/s/b");
}

/// Under `-s`/`-d`, what goes to syslog and what stays on stderr, compared with
/// inotifywait; rwait runs through a symlink named `inotifywait` (the drop-in install),
/// so it must log under inotifywait's ident (issue 16.7). Raw bytes stay raw (16.4).
#[test]
fn syslog_messages_match_inotifywait() {
    use super::diff::{INOTIFYWAIT, run_with_syslog};
    use crate::util::{Scratch, assert_bytes_eq, bin, require, visible};
    let link_dir = Scratch::new();
    let link = link_dir.join("inotifywait");
    std::os::unix::fs::symlink(bin("rwait"), &link).unwrap();
    let cases: &[(&str, &[&str])] = &[
        (D, &["-s", "-t", "1", "d"]),
        (TREE, &["-s", "-r", "-t", "1", "d"]),
        (D, &["-s", "-q", "-t", "1", "d"]),
        (D, &["-s", "-t", "1", "d", "nonexist{xff}"]),
        (D, &["-s", "-r", "-t", "1", "caf{xe9}"]),
        (D, &["-s", "--exclude", "a", "--exclude", "b", "-t", "1", "d"]),
        (D, &["-s", "--exclude", "*x", "d"]),
        (D, &["-s", "--fromfile", "nope", "-t", "1", "d"]),
        (D, &["-s", "-o", "/nonexistent/x", "d"]),
        (
            "mkdir d; touch out.log",
            &["-d", "-t", "1", "-o", "{S}/out.log", "{S}/d"],
        ),
        (
            "mkdir d; touch out.log",
            &["-d", "-t", "1", "-o", "{S}/out.log", "{S}/nonexist{xff}"],
        ),
    ];
    for (i, (setup, args)) in cases.iter().enumerate() {
        let Some(want) = require(run_with_syslog(Path::new(INOTIFYWAIT), None, setup, args)) else {
            return;
        };
        let got = run_with_syslog(&link, None, setup, args).unwrap();
        let ctx = format!(
            "args {args:?}\n--- inotifywait syslog ---\n{}\n--- rwait syslog ---\n{}\n--- inotifywait stderr ---\n{}\n--- rwait stderr ---\n{}",
            want.messages.iter().map(|m| visible(m)).collect::<Vec<_>>().join("\n"),
            got.messages.iter().map(|m| visible(m)).collect::<Vec<_>>().join("\n"),
            visible(&want.stderr),
            visible(&got.stderr),
        );
        assert!(
            i > 0 || !want.messages.is_empty(),
            "inotifywait logged no banner: the capture does not work\n{ctx}"
        );
        let shown = |r: &super::diff::SyslogRun| r.messages.iter().map(|m| visible(m)).collect::<Vec<_>>();
        assert_eq!(shown(&got), shown(&want), "syslog\n{ctx}");
        assert_bytes_eq(&format!("stderr\n{ctx}"), &got.stderr, &want.stderr);
        assert_eq!(got.code, want.code, "exit status\n{ctx}");
    }
}
