/// Where ``CoAPRequestExchange`` reassembles an answer's body.
///
/// A generic parameter rather than an array so that a board can hand in the one fixed buffer it reserved at
/// boot: its heap has no room for a second copy of a 4 KiB body. The exchange checks its cap before every
/// append, so a fixed buffer of that size never overflows.
public protocol CoAPBodyStorage {
    var count: Int { get }
    /// Starts the body over (block 0 again, after the representation changed).
    mutating func removeAll(keepingCapacity: Bool)
    mutating func append(contentsOf bytes: [UInt8])
}

extension Array: CoAPBodyStorage where Element == UInt8 {}
