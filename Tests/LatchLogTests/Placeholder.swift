import Testing
@testable import LatchLog

