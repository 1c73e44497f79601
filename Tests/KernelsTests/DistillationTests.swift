import Foundation
import Kernels
import Testing

/// The distillation term: KL(softmax(t/T) ‖ softmax(z/T)) against the definition in
/// Double, its gradient against central differences, and zero (with a zero gradient)
/// where the student's logits equal the teacher's.
@Suite struct DistillationTests {
  @Test(arguments: [Float(1), 4])
  func matchesDefinitionAndDifferences(temperature: Float) {
    var rng = RNG(seed: 1, stream: "kd \(temperature)")
    let (n, k) = (5, 7)
    let student = FD.random([n, k], &rng, scale: 3)
    let teacher = FD.random([n, k], &rng, scale: 3)
    let targets: [Int32] = [0, 3, CrossEntropy.ignoreIndex, 6, 2]
    let (q, p) = (Tensor([n, k]), Tensor([n, k]))
    let loss: () -> Double = {
      Double(
        Distillation.forward(
          studentSoft: q, teacherSoft: p, student: student, teacher: teacher, temperature: temperature,
          targets: targets))
    }
    var reference = 0.0
    for r in [0, 1, 3, 4] {
      func soft(_ x: Tensor) -> [Double] {
        let row = (0..<k).map { Double(x[r * k + $0]) / Double(temperature) }
        let m = row.max()!
        let e = row.map { Foundation.exp($0 - m) }
        let sum = e.reduce(0, +)
        return e.map { $0 / sum }
      }
      let (ps, pt) = (soft(student), soft(teacher))
      reference += zip(pt, ps).map { $0 * (Foundation.log($0) - Foundation.log($1)) }.reduce(0, +)
    }
    reference /= 4
    #expect(abs(loss() - reference) < 1e-5 * max(1, reference))
    let grad = Tensor([n, k])
    _ = loss()
    Distillation.backward(
      dlogits: grad, studentSoft: q, teacherSoft: p, temperature: temperature, targets: targets, scale: 0.25)
    // scale 1/4: the mean over the 4 counted rows.
    FD.check("dstudent", analytic: grad, wrt: student, step: 1e-2, loss)
  }

  @Test func zeroWhereTheStudentIsTheTeacher() {
    var rng = RNG(seed: 2, stream: "kd zero")
    let logits = FD.random([3, 4], &rng, scale: 2)
    let (q, p, grad) = (Tensor([3, 4]), Tensor([3, 4]), Tensor([3, 4]))
    let kl = Distillation.forward(
      studentSoft: q, teacherSoft: p, student: logits, teacher: logits.clone(), temperature: 2, targets: [0, 1, 2])
    Distillation.backward(dlogits: grad, studentSoft: q, teacherSoft: p, temperature: 2, targets: [0, 1, 2], scale: 1)
    #expect(abs(kl) < 1e-7)
    #expect(grad.array.allSatisfy { abs($0) < 1e-7 })
  }
}
