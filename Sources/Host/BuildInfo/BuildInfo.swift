/// What `--version` prints on every binary: the release and the git commit it was built from (``commit`` is
/// generated at build time by the BuildInfo plugin).
public enum BuildInfo {
    public static let version = "0.5.0"

    /// "0.5.0 (commit 1a2b3c4d5e6f)".
    public static var description: String { "\(version) (commit \(commit))" }
}
