/// The middle of `values` (the mean of the two middle ones for an even count): how the benches report figures
/// measured over several rounds, so that one round a busy neighbour slowed does not move the figure.
func median(_ values: [Double]) -> Double {
    guard !values.isEmpty else { return .nan }
    let s = values.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}
