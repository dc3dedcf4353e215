import Foundation
import XCTest

@testable import Gateway

final class ConsoleSiteTests: XCTestCase {
    private var siteDirectory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Sources/Gateway/Console/site").standardized
    }

    /// The binary serves what is in the repository: run scripts/embed-console after editing the site.
    func testTheEmbeddedConsoleIsTheSiteAsItIsInTheRepository() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: siteDirectory.path).sorted()
        XCTAssertEqual(ConsoleAssets.files.keys.sorted(), names, "run scripts/embed-console")
        for name in names {
            let text = try String(contentsOf: siteDirectory.appendingPathComponent(name), encoding: .utf8)
            XCTAssertEqual(ConsoleAssets.files[name], text, "\(name) differs from its embedded copy: run scripts/embed-console")
        }
    }

    func testPagesComeWithAPolicyThatRunsOnlyTheirOwnScripts() {
        let site = ConsoleSite()
        let index = site.answer(path: "/console/?token=ignored")
        XCTAssertEqual(index.status, 200)
        XCTAssertEqual(index.contentType, "text/html; charset=utf-8")
        XCTAssertTrue(String(decoding: index.body, as: UTF8.self).contains("<script type=\"module\" src=\"console.js\">"))
        let policy = index.headers.first { $0.0 == "content-security-policy" }?.1 ?? ""
        XCTAssertTrue(policy.contains("script-src 'self'") && policy.contains("default-src 'none'") && !policy.contains("unsafe"), policy)
        XCTAssertEqual(site.answer(path: "/console/grpcweb.js").contentType, "text/javascript; charset=utf-8")
        XCTAssertEqual(site.answer(path: "/console").status, 308)
        XCTAssertEqual(site.answer(path: "/console").headers.first { $0.0 == "location" }?.1, "/console/")
        XCTAssertEqual(site.answer(path: "/console/../jwt-secret").status, 404)
        XCTAssertEqual(site.answer(path: "/console/nope.js").status, 404)
    }

    func testNoInlineScriptOrStyleInThePages() throws {
        // The policy forbids them: one would silently not run in a browser.
        for (name, text) in ConsoleAssets.files where name.hasSuffix(".html") {
            XCTAssertFalse(text.contains("<script>") || text.contains("style=") || text.contains("onclick="), name)
        }
    }
}
