// RUN: edgeq-opt %s --edgeq-fuse-i64 | filecheck %s

#id = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d0, 0)>
#ch = affine_map<(d0, d1) -> (d1)>
#red_in = affine_map<(d0, d1) -> (d0, d1)>
#red_out = affine_map<(d0, d1) -> (d0)>

// A residual add as torch exports it: each op its own generic, i64 tensors between them. The i32 and i8->i32
// inputs stay; every i64 step lands in the last generic, whose boundary is i32.
// CHECK-LABEL: func.func @chain
// CHECK:         %[[W:.*]] = linalg.generic {{.*}} ins(%{{.*}} : tensor<4x8xi8>) outs(%{{.*}} : tensor<4x8xi32>)
// CHECK:           arith.extsi %{{.*}} : i8 to i32
// CHECK-NOT:     tensor<4x8xi64>
// CHECK:         linalg.generic {{.*}} ins(%{{.*}}, %{{.*}}, %[[W]], %{{.*}} : tensor<4x8xi32>, tensor<8xi32>, tensor<4x8xi32>, tensor<4x1xi32>) outs(%{{.*}} : tensor<4x8xi32>)
// CHECK-COUNT-3:   arith.extsi %{{.*}} : i32 to i64
// CHECK:           arith.muli %{{.*}}, %{{.*}} : i64
// CHECK:           arith.addi %{{.*}}, %{{.*}} : i64
// CHECK:           arith.shrsi %{{.*}}, %{{.*}} : i64
// CHECK:           arith.trunci %{{.*}} : i64 to i32
// CHECK-NOT:     tensor<4x8xi64>
// CHECK:         return
func.func @chain(%acc: tensor<4x8xi32>, %b: tensor<8xi32>, %h: tensor<4x8xi8>, %rowv: tensor<4x1xi32>) -> tensor<4x8xi32> {
  %c3 = arith.constant 3 : i64
  %e32 = tensor.empty() : tensor<4x8xi32>
  %e64 = tensor.empty() : tensor<4x8xi64>
  %p = linalg.generic {indexing_maps = [#id, #ch, #id], iterator_types = ["parallel", "parallel"]}
      ins(%acc, %b : tensor<4x8xi32>, tensor<8xi32>) outs(%e64 : tensor<4x8xi64>) {
  ^bb0(%a: i32, %m: i32, %o: i64):
    %a64 = arith.extsi %a : i32 to i64
    %m64 = arith.extsi %m : i32 to i64
    %r = arith.muli %a64, %m64 : i64
    linalg.yield %r : i64
  } -> tensor<4x8xi64>
  %w = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%h : tensor<4x8xi8>) outs(%e32 : tensor<4x8xi32>) {
  ^bb0(%x: i8, %o: i32):
    %r = arith.extsi %x : i8 to i32
    linalg.yield %r : i32
  } -> tensor<4x8xi32>
  %w64 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%w : tensor<4x8xi32>) outs(%e64 : tensor<4x8xi64>) {
  ^bb0(%x: i32, %o: i64):
    %r = arith.extsi %x : i32 to i64
    linalg.yield %r : i64
  } -> tensor<4x8xi64>
  %s = linalg.generic {indexing_maps = [#id, #id, #row, #id], iterator_types = ["parallel", "parallel"]}
      ins(%p, %w64, %rowv : tensor<4x8xi64>, tensor<4x8xi64>, tensor<4x1xi32>) outs(%e32 : tensor<4x8xi32>) {
  ^bb0(%x: i64, %y: i64, %z: i32, %o: i32):
    %sum = arith.addi %x, %y : i64
    %sh = arith.shrsi %sum, %c3 : i64
    %t = arith.trunci %sh : i64 to i32
    %r = arith.addi %t, %z : i32
    linalg.yield %r : i32
  } -> tensor<4x8xi32>
  return %s : tensor<4x8xi32>
}

// Left alone: a producer that reads i8 itself (an i8 load inside the fused dispatch is what Vulkan miscompiles).
// CHECK-LABEL: func.func @i8_producer
// CHECK:         linalg.generic {{.*}} outs(%{{.*}} : tensor<4x8xi64>)
// CHECK:         linalg.generic {{.*}} ins(%{{.*}} : tensor<4x8xi64>)
func.func @i8_producer(%h: tensor<4x8xi8>) -> tensor<4x8xi32> {
  %e32 = tensor.empty() : tensor<4x8xi32>
  %e64 = tensor.empty() : tensor<4x8xi64>
  %w64 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%h : tensor<4x8xi8>) outs(%e64 : tensor<4x8xi64>) {
  ^bb0(%x: i8, %o: i64):
    %r = arith.extsi %x : i8 to i64
    linalg.yield %r : i64
  } -> tensor<4x8xi64>
  %t = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%w64 : tensor<4x8xi64>) outs(%e32 : tensor<4x8xi32>) {
  ^bb0(%x: i64, %o: i32):
    %r = arith.trunci %x : i64 to i32
    linalg.yield %r : i32
  } -> tensor<4x8xi32>
  return %t : tensor<4x8xi32>
}

// torch's amax is a max with an argmax nobody reads: the i64 argmax result and the ops only it needed go.
// CHECK-LABEL: func.func @amax
// CHECK:         linalg.generic {{.*}} outs(%{{.*}} : tensor<4xi32>) {
// CHECK-NOT:       linalg.index
// CHECK-NOT:       i64
// CHECK:           arith.maxsi
// CHECK-NOT:       i64
// CHECK:         return
func.func @amax(%x: tensor<4x8xi32>) -> tensor<4xi32> {
  %min = arith.constant -2147483648 : i32
  %z = arith.constant 0 : i64
  %e32 = tensor.empty() : tensor<4xi32>
  %e64 = tensor.empty() : tensor<4xi64>
  %f32 = linalg.fill ins(%min : i32) outs(%e32 : tensor<4xi32>) -> tensor<4xi32>
  %f64 = linalg.fill ins(%z : i64) outs(%e64 : tensor<4xi64>) -> tensor<4xi64>
  %r:2 = linalg.generic {indexing_maps = [#red_in, #red_out, #red_out], iterator_types = ["parallel", "reduction"]}
      ins(%x : tensor<4x8xi32>) outs(%f32, %f64 : tensor<4xi32>, tensor<4xi64>) {
  ^bb0(%in: i32, %m: i32, %i: i64):
    %k = linalg.index 1 : index
    %k64 = arith.index_cast %k : index to i64
    %mx = arith.maxsi %in, %m : i32
    %gt = arith.cmpi sgt, %in, %m : i32
    %sel = arith.select %gt, %k64, %i : i64
    linalg.yield %mx, %sel : i32, i64
  } -> (tensor<4xi32>, tensor<4xi64>)
  return %r#0 : tensor<4xi32>
}
