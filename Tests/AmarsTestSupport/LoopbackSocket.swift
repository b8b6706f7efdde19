#if canImport(Glibc)
    import Glibc
#endif

/// Raw IPv4 sockets on loopback for tests that play a device, a client or a stranger: bind (optionally beside
/// someone else with SO_REUSEADDR) and connect from any 127.x.y.z, so one test can be many sources.
public enum LoopbackSocket {
    /// A socket of `type` bound to `host`:`port` (0: the kernel picks), or the errno of the failure.
    public static func bound(
        _ type: Int32, host: String = "127.0.0.1", port: UInt16 = 0, reuseAddress: Bool = false
    ) -> Result<Int32, Errno> {
        let fd = socket(AF_INET, type, 0)
        guard fd >= 0 else { return .failure(Errno(code: errno)) }
        if reuseAddress {
            var on: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_in(host: host, port: port)
        let ok = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        guard ok else {
            let failure = Errno(code: errno)
            close(fd)
            return .failure(failure)
        }
        return .success(fd)
    }

    /// The port `fd` is bound to.
    public static func port(of fd: Int32) -> UInt16 {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return UInt16(bigEndian: address.sin_port)
    }

    /// A blocking TCP connection to 127.0.0.1:`port` from the loopback address `source`; nil if it failed.
    public static func connectTCP(port: Int, from source: String = "127.0.0.1") -> Int32? {
        guard case .success(let fd) = bound(Int32(SOCK_STREAM.rawValue), host: source) else { return nil }
        var remote = sockaddr_in(host: "127.0.0.1", port: UInt16(port))
        let ok = withUnsafePointer(to: &remote) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        guard ok else {
            close(fd)
            return nil
        }
        return fd
    }

    public struct Errno: Error, Equatable {
        public let code: Int32
    }
}

extension sockaddr_in {
    init(host: String, port: UInt16) {
        self.init()
        sin_family = sa_family_t(AF_INET)
        sin_addr.s_addr = inet_addr(host)
        sin_port = port.bigEndian
    }
}
