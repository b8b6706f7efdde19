import Chain
import Foundation
import Logging

/// Keeps a broker's deny list (``BrokerDenyList``) in step with the chain: a device whose certificate is revoked,
/// by its own revocation or an ancestor's, is denied by the broker's TLS listener from the block that revokes it
/// (SPEC "Device identity"), the same devices ``ChainNode/requireDeviceCertificates`` refuses at the doors.
///
/// Each new head is looked at off the committing thread, and the chain is scanned only after a block that could
/// change the list (``ChainNode/Status/certificateBlocks``): a block of transfers costs one comparison.
public final class BrokerRevocations: @unchecked Sendable {
    private let chain: ChainNode
    private let denyList: BrokerDenyList
    private let logger: Logger
    private let queue = DispatchQueue(label: "amars.broker-revocations")
    /// Only touched on ``queue``: the certificate count whose list is on disk, and whether the broker was signalled
    /// since.
    private var seen: UInt64?
    private var signalled = false

    public init(chain: ChainNode, denyList: BrokerDenyList, logger: Logger) {
        self.chain = chain
        self.denyList = denyList
        self.logger = logger
    }

    /// Writes the list for the head now and signals the broker if one runs. Call once at start, before the first
    /// block; a failure to write is the operator's to fix (the broker's directory is not writable).
    public func sync() throws { try queue.sync { try look() } }

    private func look() throws {
        let count = chain.status.certificateBlocks
        guard count != seen else {
            // The list is on disk; a broker that was down or still starting gets its signal now.
            if !signalled { signalled = denyList.reloadBroker() }
            return
        }
        let revoked = chain.revokedDeviceAccounts()
        let outcome = try denyList.write(revoked)
        signalled = outcome.signalled
        seen = count
        if outcome.changed {
            logger.notice(
                "broker: \(revoked.count) revoked device(s) denied",
                metadata: ["acl": "\(denyList.aclPath)", "height": "\(chain.head.height)"])
        }
    }

    /// A block committed: look again on the queue, without holding up the caller.
    public func headChanged() {
        queue.async { [self] in
            do { try look() } catch {
                logger.error("broker: cannot write the deny list \(denyList.path): \(error)")
            }
        }
    }
}
