import Foundation
import PackagePlugin

/// Writes `BuildCommit.swift` (the git commit the binaries were built from, with `+dirty` when the tree had
/// uncommitted changes) before every build of the target that uses it, so `--version` names the exact source.
/// Outside a git checkout (a source tarball) the commit is "unknown".
@main
struct BuildInfoPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let output = context.pluginWorkDirectoryURL.appending(path: "generated")
        let file = output.appending(path: "BuildCommit.swift").path()
        let root = context.package.directoryURL.path()
        let script = """
            set -e
            c=$(git -C '\(root)' rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
            if [ "$c" != unknown ] && ! git -C '\(root)' diff --quiet HEAD -- 2>/dev/null; then c="$c+dirty"; fi
            mkdir -p '\(output.path())'
            new="extension BuildInfo { public static let commit = \\"$c\\" }"
            [ -f '\(file)' ] && [ "$(cat '\(file)')" = "$new" ] || printf '%s\\n' "$new" > '\(file)'
            """
        return [
            .prebuildCommand(
                displayName: "Recording the git commit for --version",
                executable: URL(fileURLWithPath: "/bin/sh"), arguments: ["-c", script], outputFilesDirectory: output)
        ]
    }
}
