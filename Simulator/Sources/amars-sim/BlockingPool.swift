import AmarsClient
import Foundation

/// A few threads for the calls that block: the people's HTTP requests (a wallet app's) and the MQTT submits
/// (libmosquitto waits on its socket). Devices await them here instead of holding one of the few threads Swift
/// concurrency runs on, and the pool's size caps how many HTTP connections the fleet holds open at once.
final class BlockingPool: @unchecked Sendable {
    // @unchecked: `jobs` is only touched under `condition`.
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var head = 0

    init(threads: Int, name: String) {
        for i in 0..<max(1, threads) {
            let thread = Thread { [self] in work() }
            thread.name = "\(name)-\(i)"
            thread.stackSize = 256 * 1024
            thread.start()
        }
    }

    /// `body`'s result, computed on one of the pool's threads.
    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            enqueue { continuation.resume(with: Result { try body() }) }
        }
    }

    private func enqueue(_ job: @escaping @Sendable () -> Void) {
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    private func work() {
        while true {
            condition.lock()
            while head == jobs.count { condition.wait() }
            let job = jobs[head]
            head += 1
            if head > 1024, head * 2 > jobs.count {
                jobs.removeFirst(head)
                head = 0
            }
            condition.unlock()
            job()
        }
    }
}

/// The gateway's HTTP API as the people (and the funder) use it, each call on the pool.
struct NodeAPI: Sendable {
    let pool: BlockingPool
    let url: String

    /// `body` run with a client of the gateway, on one of the pool's threads.
    func callAsFunction<T: Sendable>(_ body: @escaping @Sendable (NodeClient) throws -> T) async throws -> T {
        let url = url
        return try await pool.run { try body(try NodeClient(baseURL: url)) }
    }
}
