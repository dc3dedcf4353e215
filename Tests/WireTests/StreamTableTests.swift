@testable import Wire
import XCTest

final class StreamTableTests: XCTestCase {
    /// Random inserts, lookups and removals against a Dictionary, with ids
    /// that climb like a client's (odd, increasing) and some that collide
    /// (even ids share a home slot with the odd id before them).
    func testMatchesADictionaryUnderRandomUse() {
        var table = StreamTable<Int>()
        var model: [UInt32: Int] = [:]
        var rng = SystemRandomNumberGenerator()
        var nextID: UInt32 = 1
        for step in 0..<200_000 {
            switch Int.random(in: 0..<10, using: &rng) {
            case 0..<4:  // open a call
                let id = Bool.random(using: &rng) ? nextID : nextID + 1
                nextID += 2
                table.insert(step, for: id)
                model[id] = step
            case 4..<7:  // end one of the open calls
                guard let id = model.keys.randomElement(using: &rng) else { continue }
                XCTAssertEqual(table.removeValue(for: id), model.removeValue(forKey: id))
            case 7:  // end a call that is not open
                XCTAssertNil(table.removeValue(for: nextID + 7))
            default:
                let id = model.keys.randomElement(using: &rng) ?? 1
                XCTAssertEqual(table[id], model[id])
            }
            XCTAssertEqual(table.count, model.count)
            if step % 10_000 == 0 {
                for (id, v) in model { XCTAssertEqual(table[id], v, "id \(id) at step \(step)") }
                XCTAssertEqual(table.values.sorted(), model.values.sorted())
            }
        }
        XCTAssertEqual(table.removeAll().sorted(), model.values.sorted())
        XCTAssertTrue(table.isEmpty)
        XCTAssertNil(table[1])
    }

    func testKeepsFindingEntriesAcrossGrowthAndWrapAround() {
        var table = StreamTable<UInt32>()
        // Many open at once (growth), then a long-lived connection's ids wrap
        // the table many times while a few calls stay open.
        for id in stride(from: UInt32(1), to: 2_001, by: 2) { table.insert(id, for: id) }
        for id in stride(from: UInt32(1), to: 1_991, by: 2) { XCTAssertEqual(table.removeValue(for: id), id) }
        var id: UInt32 = 2_001
        for _ in 0..<100_000 {
            table.insert(id, for: id)
            XCTAssertEqual(table.removeValue(for: id), id)
            id += 2
        }
        XCTAssertEqual(table.count, 5)
        for open in stride(from: UInt32(1_991), to: 2_001, by: 2) { XCTAssertEqual(table[open], open) }
    }
}
