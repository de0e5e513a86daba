import Testing
@testable import LatchAge

