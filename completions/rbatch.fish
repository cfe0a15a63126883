complete -c rbatch -l max-wait -d 'Close a batch once its oldest path has waited this long, however busy the input [default: 10 × QUIET]' -r
complete -c rbatch -l max-paths -d 'Close a batch once it holds this many distinct paths' -r
complete -c rbatch -l input -d 'Input records: inotifywait\'s default line, its --csv record, bare paths, or detected per record' -r -f -a "auto\t'Detect per record: default line, CSV record, else a bare path'
default\t'inotifywait\'s default line `%w %e %f`'
csv\t'inotifywait\'s `--csv` record'
path\t'One path per record (`--format \'%w%f\'`)'"
complete -c rbatch -l exclude -d 'Drop paths matching this POSIX extended regular expression (repeatable)' -r
complete -c rbatch -l excludei -d 'Like --exclude, ignoring ASCII case (repeatable)' -r
complete -c rbatch -l exec -d 'Instead of printing, run CMD (no shell) once per batch with the batch\'s paths on its stdin. Takes the rest of the command line, so it must come last' -r -f -a "(__fish_complete_command)"
complete -c rbatch -s 0 -l null -d 'Input records end in NUL, not newline (from --format \'%w%f%0\' --no-newline)'
complete -c rbatch -s z -l print0 -d 'Output paths end in NUL, and a batch ends with an empty record'
complete -c rbatch -l keep-temp -d 'Keep editor and tool artefacts (vim swap files, emacs locks, ...) instead of dropping them'
complete -c rbatch -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rbatch -s V -l version -d 'Print version'
