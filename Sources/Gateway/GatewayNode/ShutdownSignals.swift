import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// SIGTERM and SIGINT, caught from the instant ``install()`` returns.
///
/// A dispatch signal source (and swift-service-lifecycle's signal sequence, built on one) first sets the signal
/// to SIG_IGN and arms the source later, on another thread: a SIGTERM sent in between was ignored, and a node a
/// supervisor had just started ran on. Here a plain handler is installed synchronously and writes a byte to a
/// pipe (the one thing a signal handler may safely do); whoever waits reads the pipe, so a signal that arrives
/// before anybody waits is kept, not lost.
public struct ShutdownSignals: Sendable {
    private let readEnd: Int32

    /// Installs the handlers (once per process) and returns the reader.
    public static func install() -> ShutdownSignals {
        installLock.lock()
        defer { installLock.unlock() }
        if signalPipe.read < 0 {
            var fds: [Int32] = [-1, -1]
            guard pipe(&fds) == 0 else {
                fatalError("cannot create the signal pipe: \(String(cString: strerror(errno)))")
            }
            // A full pipe must not block the handler: one byte per signal is more than anybody needs.
            _ = fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK)
            _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
            _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
            signalPipe = (fds[0], fds[1])
            for sig in [SIGTERM, SIGINT] {
                // A SIGINT ignored from the start is kept ignored, as shells and Python do: a script that runs the
                // node in the background (`make devnet`) gets the terminal's Ctrl-C itself and stops the node with
                // SIGTERM, and the node must not count that as a second signal.
                if sig == SIGINT && isIgnored(sig) { continue }
                signal(sig) { _ in
                    var byte: UInt8 = 1
                    _ = write(signalPipe.write, &byte, 1)
                }
            }
            // A client that hangs up mid-answer must not kill the node.
            signal(SIGPIPE, SIG_IGN)
            // A parent that spawned us from a thread blocking them (a Swift worker thread does) passed the block on.
            var stops = sigset_t()
            sigemptyset(&stops)
            sigaddset(&stops, SIGTERM)
            sigaddset(&stops, SIGINT)
            pthread_sigmask(SIG_UNBLOCK, &stops, nil)
        }
        return ShutdownSignals(readEnd: signalPipe.read)
    }

    private static func isIgnored(_ sig: Int32) -> Bool {
        var current = sigaction()
        guard sigaction(sig, nil, &current) == 0 else { return false }
        // SIG_IGN is the handler value 1.
        return unsafeBitCast(current.__sigaction_handler.sa_handler, to: Int.self) == 1
    }

    /// Waits up to `timeoutMillis` (negative: forever) for a signal; true when one arrived (and is consumed).
    public func wait(timeoutMillis: Int32 = -1) -> Bool {
        var entry = pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&entry, 1, timeoutMillis)
        guard ready > 0 else { return false }
        var byte: UInt8 = 0
        return read(readEnd, &byte, 1) == 1
    }

    /// Calls `first` on the first signal and exits the process with status 1 on the second (an operator who
    /// asks twice does not want to wait for the orderly stop), from a thread of its own.
    public func onSignal(_ first: @escaping @Sendable () -> Void) {
        let thread = Thread {
            var count = 0
            while true {
                guard self.wait() else { continue }
                count += 1
                if count == 1 {
                    first()
                } else {
                    FileHandle.standardError.write(Data("amarsd: second signal, exiting at once\n".utf8))
                    exit(1)
                }
            }
        }
        thread.name = "amars-signals"
        thread.start()
    }
}

/// Written once under `installLock`, before any handler can run; read by the handler.
nonisolated(unsafe) private var signalPipe: (read: Int32, write: Int32) = (-1, -1)
private let installLock = NSLock()
