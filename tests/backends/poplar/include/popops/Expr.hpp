// Declarations-only transcription of <popops/Expr.hpp> (graphcore/poplibs): the expression classes an
// emitted popops::map uses. Constructors are declared as in the public header; see poplar/Core.hpp.
#pragma once
#include <memory>
#include <poplar/Core.hpp>
#include <popops/ExprOp.hpp>

namespace popops {
namespace expr {

class Expr {
public:
  virtual ~Expr();
  virtual std::unique_ptr<Expr> clone() const = 0;
};

class Any {
public:
  Any(const Expr &expr);
  operator Expr &();
  operator const Expr &() const;
};

class Const : public Expr {
protected:
  template <typename T> Const(T x, bool isHalfType);

public:
  template <typename T> Const(T x);
  std::unique_ptr<Expr> clone() const override;
};

class ConstHalf : public Const {
public:
  ConstHalf(float x);
};

class Cast : public Expr {
public:
  Cast(const Expr &a, const poplar::Type bType);
  std::unique_ptr<Expr> clone() const override;
};

class PlaceHolder : public Expr {
public:
  PlaceHolder(unsigned index);
  std::unique_ptr<Expr> clone() const override;
};

extern const PlaceHolder _1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16, _17, _18, _19,
    _20;

class UnaryOp : public Expr {
public:
  UnaryOp(UnaryOpType type, const Expr &a);
  std::unique_ptr<Expr> clone() const override;
};
class BinaryOp : public Expr {
public:
  BinaryOp(BinaryOpType type, const Expr &a, const Expr &b);
  std::unique_ptr<Expr> clone() const override;
};
class TernaryOp : public Expr {
public:
  TernaryOp(TernaryOpType type, const Expr &a, const Expr &b, const Expr &c);
  std::unique_ptr<Expr> clone() const override;
};

#define DECLARE_UNARY(Name, Op)                                                                              \
  class Name : public UnaryOp {                                                                              \
  public:                                                                                                    \
    Name(const Expr &a) : UnaryOp(UnaryOpType::Op, a) {}                                                     \
  };
#define DECLARE_BINARY(Name, Op)                                                                             \
  class Name : public BinaryOp {                                                                             \
  public:                                                                                                    \
    Name(const Expr &a, const Expr &b) : BinaryOp(BinaryOpType::Op, a, b) {}                                 \
  };
#define DECLARE_TERNARY(Name, Op)                                                                            \
  class Name : public TernaryOp {                                                                            \
  public:                                                                                                    \
    Name(const Expr &a, const Expr &b, const Expr &c) : TernaryOp(TernaryOpType::Op, a, b, c) {}             \
  };

DECLARE_UNARY(Abs, ABSOLUTE)
DECLARE_UNARY(Cos, COS)
DECLARE_UNARY(Erf, ERF)
DECLARE_UNARY(Exp, EXPONENT)
DECLARE_UNARY(Floor, FLOOR)
DECLARE_UNARY(Log, LOGARITHM)
DECLARE_UNARY(Neg, NEGATE)
DECLARE_UNARY(Not, LOGICAL_NOT)
DECLARE_UNARY(Signum, SIGNUM)
DECLARE_UNARY(Sin, SIN)
DECLARE_UNARY(Sqrt, SQRT)
DECLARE_UNARY(Square, SQUARE)
DECLARE_UNARY(Tanh, TANH)
DECLARE_BINARY(Add, ADD)
DECLARE_BINARY(Divide, DIVIDE)
DECLARE_BINARY(Equal, EQUAL)
DECLARE_BINARY(Gte, GREATER_THAN_EQUAL)
DECLARE_BINARY(Gt, GREATER_THAN)
DECLARE_BINARY(Lte, LESS_THAN_EQUAL)
DECLARE_BINARY(Lt, LESS_THAN)
DECLARE_BINARY(Max, MAXIMUM)
DECLARE_BINARY(Min, MINIMUM)
DECLARE_BINARY(Mul, MULTIPLY)
DECLARE_BINARY(NotEqual, NOT_EQUAL)
DECLARE_BINARY(Pow, POWER)
DECLARE_BINARY(Sub, SUBTRACT)
DECLARE_TERNARY(Select, SELECT)
DECLARE_TERNARY(Clamp, CLAMP)

} // namespace expr
} // namespace popops
