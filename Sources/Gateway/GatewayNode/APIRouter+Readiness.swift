import AmarsCodec
import Ledger

extension APIRouter {
    /// `GET /readyz`: whether this gateway is worth sending traffic to, for a load balancer or a supervisor
    /// (`/healthz` only says the process answers). 200 when ready, 503 with the reasons otherwise.
    ///
    /// Dev mode (`amarsd run`) is ready once it serves. A committee member is ready when it has started and the
    /// members it is connected to, itself included, hold more than two thirds of the committee's weight: without
    /// that, nothing it is sent can become final. A node outside the committee is ready when connected to at
    /// least one member, from whom it hears of new blocks.
    func readiness() -> APIResponse {
        guard let status = consensusStatus?() else {
            return .json(200, .object([("ready", .bool(true)), ("mode", .string("dev"))]))
        }
        let committee = status.committee
        let ownKey = node.validatorPublicKey
        let isMember = ownKey.map { committee.index(of: $0) != nil } ?? false
        var reachable: UInt64 = 0
        for member in committee.members
        where status.connectedPeers.contains(member.key) || member.key == ownKey {
            reachable += member.weight
        }
        var reasons: [JSONValue] = []
        if !status.started { reasons.append(.string("consensus has not started")) }
        if isMember && !committee.isQuorum(reachable) {
            reasons.append(
                .string(
                    "connected members hold \(reachable) of \(committee.totalWeight) weight; more than two thirds "
                        + "is needed to finalize"))
        }
        if !isMember && reachable == 0 { reasons.append(.string("connected to no committee member")) }
        return .json(
            reasons.isEmpty ? 200 : 503,
            .object([
                ("ready", .bool(reasons.isEmpty)), ("mode", .string("committee")), ("member", .bool(isMember)),
                ("reachableWeight", .number(reachable)), ("totalWeight", .number(committee.totalWeight)),
                ("reasons", .array(reasons)),
            ]))
    }
}
