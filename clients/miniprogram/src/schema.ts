/**
 * Names for the generated types (src/generated/api.ts, from openapi.json by
 * openapi-typescript). Every API shape here is an alias of a generated one:
 * nothing is written by hand that the generator produces.
 */
import type { components, paths } from "./generated/api";

export type { components, paths };
export type Schemas = components["schemas"];

export type ErrorCode = Schemas["ErrorCode"];
export type ErrorBody = Schemas["ErrorOut"];
export type User = Schemas["UserOut"];
export type Image = Schemas["ImageOut"];
export type Special = Schemas["SpecialOut"];
export type SpecialDetail = Schemas["SpecialDetailOut"];
export type LotSummary = Schemas["LotSummaryOut"];
export type LotDetail = Schemas["LotDetailOut"];
export type LotStatus = Schemas["LotStatus"];
export type Bid = Schemas["BidOut"];
export type Deposit = Schemas["DepositOut"];
export type Order = Schemas["OrderOut"];
export type Quote = Schemas["QuoteOut"];
export type Address = Schemas["AddressIn"];
export type Payment = Schemas["PaymentOut"];
export type PaymentParams = Schemas["PaymentParamsOut"];
export type Coupon = Schemas["CouponOut"];
export type UserCoupon = Schemas["UserCouponOut"];
