import { createContext, useContext } from "react";
import type { Catalogue } from "../graph/ports";

export const CatalogueContext = createContext<Catalogue>(new Map());

export const useCatalogue = () => useContext(CatalogueContext);
