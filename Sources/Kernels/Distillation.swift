/// Knowledge distillation's soft term (Hinton et al., 2015): with student logits z and
/// teacher logits t of a row, q = softmax(z/T) and p = softmax(t/T),
///
///     KL(p ‖ q) = Σ_k p_k·(log p_k − log q_k),   d/dz KL = (q − p)/T,
///
/// averaged over the counted rows (targets not `CrossEntropy.ignoreIndex`). Training uses
/// `T²·KL` so that the soft term's gradient keeps its size as T changes.
public enum Distillation {
  /// Rows of student (N, K) and teacher (N, K) logits -> the mean KL(p ‖ q) over counted
  /// rows; `studentSoft` and `teacherSoft` (N, K) keep q and p for the backward.
  public static func forward(
    studentSoft: Tensor, teacherSoft: Tensor, student: Tensor, teacher: Tensor, temperature: Float, targets: [Int32]
  ) -> Float {
    let k = student.lastDim
    let n = student.count / k
    precondition(
      teacher.shape == student.shape && studentSoft.count == student.count && teacherSoft.count == student.count
        && targets.count == n, "distillation: student \(student.shape), teacher \(teacher.shape)")
    let inv = 1 / temperature
    var total: Double = 0
    var counted = 0
    for r in 0..<n {
      let (zs, zt) = (student.data + r * k, teacher.data + r * k)
      let (qs, pt) = (studentSoft.data + r * k, teacherSoft.data + r * k)
      // q and p by the softmax kernel, from the logits scaled by 1/T; their logs from the
      // row max and sum it returns: log q_j = z_j/T − max − log Σ.
      for j in 0..<k {
        qs[j] = zs[j] * inv
        pt[j] = zt[j] * inv
      }
      let (maxS, sumS) = Softmax.row(qs, qs, k)
      let (maxT, sumT) = Softmax.row(pt, pt, k)
      let (logS, logT) = (_log(Double(sumS)), _log(Double(sumT)))
      var kl: Double = 0
      for j in 0..<k {
        let ls = Double(zs[j] * inv - maxS) - logS  // log q
        let lt = Double(zt[j] * inv - maxT) - logT  // log p
        kl += Double(pt[j]) * (lt - ls)
      }
      if targets[r] != CrossEntropy.ignoreIndex {
        total += kl
        counted += 1
      }
    }
    return counted == 0 ? 0 : Float(total / Double(counted))
  }

  /// dlogits += scale·(q − p)/T for every counted row (`scale` = d(loss)/d(row's KL)).
  public static func backward(
    dlogits: Tensor, studentSoft: Tensor, teacherSoft: Tensor, temperature: Float, targets: [Int32], scale: Float
  ) {
    let k = dlogits.lastDim
    let s = scale / temperature
    for r in 0..<(dlogits.count / k) where targets[r] != CrossEntropy.ignoreIndex {
      let (d, q, p) = (dlogits.data + r * k, studentSoft.data + r * k, teacherSoft.data + r * k)
      for j in 0..<k { d[j] += s * (q[j] - p[j]) }
    }
  }
}
